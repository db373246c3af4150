// The environment of a test run, read here only: whether it is CI, and where programs are looked for.

/** Whether the tests run under CI, where a missing program fails them. */
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

/** The PATH of the test run. */
export function searchPath(): string {
  return process.env.PATH ?? "";
}

/**
 * The environment for a child the tests start (the appliance): the test run's own, without the
 * Node switches meant for the test runner (a loader), with `extra` on top.
 */
export function childEnvironment(extra: Readonly<Record<string, string>>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}
