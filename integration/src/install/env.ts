// The environment of the installer tests, read here only: where the Debian root is cached.

/** Where the Debian roots are cached when `COYOTE_TEST_CACHE` is not set: outside any checkout. */
export const DEFAULT_CACHE_DIR = "/var/cache/coyote-test";

/**
 * The folder the installer tests cache their Debian roots in: `COYOTE_TEST_CACHE` when set (an
 * absolute path), else {@link DEFAULT_CACHE_DIR}.
 * @throws Error naming the variable when it is set to something other than an absolute path.
 */
export function cacheDir(): string {
  const value = process.env.COYOTE_TEST_CACHE;
  if (value === undefined || value === "") return DEFAULT_CACHE_DIR;
  if (!value.startsWith("/") || value.includes("\0")) throw new Error(`COYOTE_TEST_CACHE must be an absolute path, not ${JSON.stringify(value)}`);
  return value;
}

/** Whether the installer tests keep the machine's containers and images for a look after a run. */
export function keepMachines(): boolean {
  return process.env.COYOTE_TEST_KEEP_MACHINES === "1";
}
