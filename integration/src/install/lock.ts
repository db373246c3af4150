// An exclusive lock between test runs on one machine: a file created with O_EXCL holding the
// owner's pid. A lock whose owner is gone (a run killed mid-build) is taken over.
import { open, readFile, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { alive } from "@coyote/testing";

/** How {@link withLock} waits for another run's lock. */
export interface LockOptions {
  /** How long to wait for the lock before failing, in milliseconds. */
  readonly timeoutMs: number;
  /** Called once when the lock is held by another live run, with its pid. */
  readonly onWait?: (pid: number) => void;
}

async function tryTake(path: string): Promise<boolean> {
  try {
    const handle = await open(path, "wx", 0o644);
    await handle.writeFile(`${String(process.pid)}\n`);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new Error(`taking the lock ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The pid in a lock file, or undefined when the file is gone or holds no pid. */
async function owner(path: string): Promise<number | undefined> {
  const text = await readFile(path, "utf8").catch(() => "");
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Runs `work` while holding the lock file `path`; waits while another live process holds it, and
 * takes over a lock whose process has ended.
 * @throws Error when the lock stays held past `timeoutMs`.
 */
export async function withLock<T>(path: string, options: LockOptions, work: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  let told = false;
  for (;;) {
    if (await tryTake(path)) break;
    const pid = await owner(path);
    // A file with no pid yet is one being written right now: give its owner a moment.
    if (pid !== undefined && pid !== process.pid && !alive(pid)) {
      await rm(path, { force: true });
      continue;
    }
    if (pid !== undefined && !told) {
      told = true;
      options.onWait?.(pid);
    }
    if (performance.now() > deadline) throw new Error(`the lock ${path} is still held by pid ${String(pid)} after ${String(options.timeoutMs)} ms`);
    await sleep(500);
  }
  try {
    return await work();
  } finally {
    await rm(path, { force: true });
  }
}
