import { readFile } from "node:fs/promises";
import type { CoyoteLogger } from "@coyote/log";

/**
 * File helpers every actuator needs when it observes the files it keeps per service (a fragment
 * under `<stateDir>/<actuator>/`), so that each reads, tolerates and reports them the same way.
 */

import { errorText } from "@coyote/log";

export { errorText };

/**
 * A file's text, or undefined when it does not exist.
 * @throws the file system's error for anything but a missing file (a permission problem must not
 *   read as "no file", which would make the plan recreate it).
 */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** What {@link observeFragment} found. */
export interface ObservedFragment<T> {
  /** The file's text, or undefined when there is none. */
  readonly text: string | undefined;
  /** The parsed fragment, or undefined when there is none or it is invalid. */
  readonly fragment: T | undefined;
}

/**
 * Reads the fragment an actuator keeps for one service. An invalid fragment is logged and observed
 * as its text alone: the plan then sees text that differs from the one it wants and rewrites it,
 * instead of the service failing for good on a file the actuator itself writes.
 * @param path the fragment file.
 * @param parse parses and checks the text; throws when it is not a valid fragment.
 * @param logger where to warn about an invalid one.
 * @param what what the fragment holds, for the warning (`mail`, `backend`).
 */
export async function observeFragment<T>(path: string, parse: (text: string) => T, logger: CoyoteLogger, what: string): Promise<ObservedFragment<T>> {
  const text = await readTextIfExists(path);
  if (text === undefined) return { text, fragment: undefined };
  try {
    return { text, fragment: parse(text) };
  } catch (error) {
    logger.warn({ file: path, err: error }, `the service's ${what} fragment is invalid; it is rewritten`);
    return { text, fragment: undefined };
  }
}
