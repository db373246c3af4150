// Temporary folders for tests, under the OS temp folder, removed by the test that made them.
import { mkdtempSync, rmSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";

/** A temporary folder and the function that removes it. */
export interface TempDir {
  readonly dir: string;
  /** Removes the folder and everything in it. */
  readonly cleanup: () => Promise<void>;
}

/** Makes a fresh temporary folder (mode 0700) named `<prefix>XXXXXX`. */
export async function tempDir(prefix = "coyote-test-"): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A maker of temporary folders for one test file: call it at the top level of the file; every
 * folder it makes is removed once the file's tests are done (`after` of node:test).
 */
export function tempDirs(prefix = "coyote-test-"): () => string {
  const made: string[] = [];
  after(() => {
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    made.push(dir);
    return dir;
  };
}

/**
 * Makes a fresh temporary folder of mode 0755, to hold a state folder: the box's daemons' users
 * must pass through the folders above the state folder (they are given passage through the state
 * folder itself).
 */
export async function daemonTempDir(prefix = "coyote-test-"): Promise<TempDir> {
  const made = await tempDir(prefix);
  await chmod(made.dir, 0o755);
  return made;
}
