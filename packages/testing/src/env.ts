// The environment of a test run, read here only: whether it is CI, and where programs are looked for.

/** Whether the tests run under CI, where a missing program fails them. */
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

/** The PATH of the test run. */
export function searchPath(): string {
  return process.env.PATH ?? "";
}
