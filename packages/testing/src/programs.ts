// Finding the system programs a test needs (Knot, Postfix, Prosody, ...), by one rule for every
// package: a program missing under CI=true is a failure, never a silent skip.
import { delimiter } from "node:path";
import { findExecutable } from "@coyote/spec";
import { IN_CI, searchPath } from "./env.ts";

export { IN_CI };

/** The folders searched besides PATH: the sbin folders are often not on a user's PATH. */
const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"];

/** The absolute path of an executable program on PATH or in the sbin folders, or undefined. */
export function findProgram(name: string): string | undefined {
  return findExecutable(name, [...searchPath().split(delimiter), ...EXTRA_DIRS]);
}

/**
 * The skip reason for tests that need these programs: false when they are all there, and false
 * under CI too (the test then fails in {@link requireProgram}). A skip says so loudly on stderr.
 * @param why what installs them, for the message (the Debian packages).
 */
export function skipWithout(names: readonly string[], why: string): string | false {
  const missing = names.filter((name) => findProgram(name) === undefined);
  if (missing.length === 0 || IN_CI) return false;
  const reason = `SKIPPED: ${missing.join(", ")} not installed (${why}); with CI=true this is a failure`;
  process.stderr.write(`\n!!! ${reason}\n\n`);
  return reason;
}

/**
 * The path of a program the test cannot do without.
 * @throws Error naming it when it is missing (see tooling/system-deps.json).
 */
export function requireProgram(name: string): string {
  const path = findProgram(name);
  if (path === undefined) throw new Error(`${name} is not installed (see tooling/system-deps.json)`);
  return path;
}
