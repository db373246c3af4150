/** An error's message, whatever was thrown: what every component puts in a log line or an alarm. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
