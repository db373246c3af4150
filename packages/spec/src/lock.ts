import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { link, lstat, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { atomicTempPath, isPidAlive } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";

/**
 * A lock file shared by processes on one machine: created atomically, naming its holder so that a
 * lock left behind by a dead process is recognised and taken over instead of blocking forever.
 */

/** Who holds a lock file; this is the file's JSON content. */
export interface LockHolder {
  /** The holder's process id. */
  readonly pid: number;
  /**
   * The holder's start time in clock ticks after boot (field 22 of `/proc/<pid>/stat`), so that
   * another process that got the same pid later is not mistaken for the holder. Absent where
   * `/proc` is not available.
   */
  readonly startTime?: string;
  /** The kernel's boot id, so that a lock from before a reboot is stale whatever its pid. */
  readonly bootId?: string;
  /** The machine's host name; a holder on another host cannot be checked by pid. */
  readonly hostname: string;
  /** When the lock was taken, ISO 8601 UTC. */
  readonly acquiredAt: string;
  /** A random value that tells this holding apart from every other one, even of the same process. */
  readonly nonce: string;
}

/** A held lock. */
export interface FileLock {
  /** The lock file. */
  readonly path: string;
  /** What the lock file says about us. */
  readonly holder: LockHolder;
  /** The dead holder whose stale lock this call removed while getting the lock, if any. */
  readonly tookOver: LockHolder | undefined;
  /** Removes the lock file, unless someone took it over meanwhile (then it is theirs). */
  release(): Promise<void>;
}

/** Options of {@link acquireFileLock}. */
export interface AcquireFileLockOptions {
  /** How long to wait for a live holder before giving up, in milliseconds. */
  readonly timeoutMs: number;
  /** What the lock protects, for the error message (default: the lock file's path). */
  readonly what?: string;
}

// A lock file of another host, or an unreadable one, cannot be checked by pid; our writers hold
// the lock for milliseconds, so one this old is left over.
const UNCHECKABLE_STALE_MS = 60_000;

function readProcText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

function processStat(pid: number): { state: string; startTime: string | undefined } | undefined {
  const stat = readProcText(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so
  // count fields from the last closing parenthesis: field 3 comes right after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0] ?? "", startTime: fields[22 - 3] };
}

/**
 * The start time of a process in clock ticks after boot, from `/proc/<pid>/stat`.
 * @returns undefined when the process does not exist or `/proc` is not available.
 */
export function processStartTime(pid: number): string | undefined {
  return processStat(pid)?.startTime;
}

let ownIdentity: { startTime: string | undefined; bootId: string | undefined } | undefined;

function identity(): { startTime: string | undefined; bootId: string | undefined } {
  ownIdentity ??= { startTime: processStartTime(process.pid), bootId: readProcText("/proc/sys/kernel/random/boot_id")?.trim() };
  return ownIdentity;
}

/**
 * Whether the holder named in a lock file still holds it: its process exists, is not a zombie,
 * and is the same process (same start time, same boot). A holder on another host counts as alive.
 */
export function isHolderAlive(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return true;
  const own = identity();
  if (holder.bootId !== undefined && own.bootId !== undefined && holder.bootId !== own.bootId) return false;
  if (!isPidAlive(holder.pid)) return false;
  const current = processStat(holder.pid);
  // No /proc entry although kill(0) saw the pid: another pid namespace; trust the pid.
  if (current === undefined) return true;
  // A zombie (killed, not yet reaped by its parent) still has its pid but will never release.
  if (current.state === "Z" || current.state === "X") return false;
  return holder.startTime === undefined || current.startTime === holder.startTime;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder> | null;
    if (
      value === null ||
      typeof value !== "object" ||
      typeof value.pid !== "number" ||
      typeof value.nonce !== "string" ||
      typeof value.hostname !== "string" ||
      typeof value.acquiredAt !== "string"
    ) {
      return undefined;
    }
    return value as LockHolder;
  } catch {
    return undefined;
  }
}

/**
 * Reads who holds a lock file.
 * @returns the holder, `null` for a file that does not say (truncated by a power loss), or
 *   undefined when there is no lock file.
 */
export async function readLockHolder(path: string): Promise<LockHolder | null | undefined> {
  try {
    return parseHolder(await readFile(path, "utf8")) ?? null;
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CoyoteError("STORE_ERR_IO", `reading lock ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

async function ageMs(path: string): Promise<number | undefined> {
  const stats = await lstat(path).catch(() => undefined);
  return stats === undefined ? undefined : Date.now() - stats.mtimeMs;
}

// A breaker is held for two system calls; one this old belongs to a process that died or stopped.
const BREAKER_STALE_MS = 5_000;

/**
 * Removes a stale lock without a race. Two waiters may both judge the same lock stale; a plain
 * unlink by the slower one could remove the lock the faster one has just taken. So breaking goes
 * through a second lock file, the breaker (`<lock>.break`): whoever holds it re-reads the lock and
 * removes it only when it is still the stale one. While the stale file exists nobody can take the
 * lock, and only breakers remove a stale file, so the re-read stays true until the unlink.
 * @param path the lock file.
 * @param staleNonce the nonce of the stale lock (undefined for one that does not say).
 * @param holder what to write into the breaker.
 * @returns whether this call removed the stale lock (false when another process is breaking it
 *   or already has).
 */
async function breakStale(path: string, staleNonce: string | undefined, holder: LockHolder): Promise<boolean> {
  const breaker = `${path}.break`;
  const temp = atomicTempPath(breaker);
  try {
    await writeFile(temp, `${JSON.stringify(holder)}\n`, { flag: "wx", mode: 0o644 });
    try {
      await link(temp, breaker);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "EEXIST") throw cause;
      await removeStaleBreaker(breaker);
      return false;
    }
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  try {
    const current = await readLockHolder(path);
    if (current === undefined) return false;
    if ((current === null ? undefined : current.nonce) !== staleNonce) return false;
    await unlink(path);
    return true;
  } finally {
    await unlink(breaker).catch(() => undefined);
  }
}

/**
 * Removes a breaker left by a process that died holding it. Moving it aside and checking what was
 * moved keeps a live breaker taken meanwhile in place (put back when moved by mistake).
 */
async function removeStaleBreaker(breaker: string): Promise<void> {
  const holder = await readLockHolder(breaker);
  if (holder === undefined) return;
  const age = (await ageMs(breaker)) ?? 0;
  const stale = holder === null || holder.hostname !== hostname() ? age > BREAKER_STALE_MS : !isHolderAlive(holder) || age > BREAKER_STALE_MS;
  if (!stale) return;
  const aside = atomicTempPath(breaker);
  try {
    await rename(breaker, aside);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return;
    throw cause;
  }
  const moved = parseHolder(await readFile(aside, "utf8").catch(() => ""));
  if ((moved?.nonce ?? null) !== (holder === null ? null : holder.nonce)) await link(aside, breaker).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/**
 * Takes a lock file, waiting while a live process holds it and taking over one left by a dead
 * process. The file is written completely under a temporary name and then hard-linked to the lock
 * name (which fails atomically when it exists), so a lock file is never seen half-written.
 * @param path the lock file.
 * @param options how long to wait.
 * @throws CoyoteError STORE_ERR_LOCKED naming the holder's pid when a live holder keeps it past
 *   the timeout; STORE_ERR_IO when the file system fails.
 */
export async function acquireFileLock(path: string, options: AcquireFileLockOptions): Promise<FileLock> {
  const own = identity();
  const holder: LockHolder = {
    pid: process.pid,
    ...(own.startTime === undefined ? {} : { startTime: own.startTime }),
    ...(own.bootId === undefined ? {} : { bootId: own.bootId }),
    hostname: hostname(),
    acquiredAt: new Date().toISOString(),
    nonce: randomBytes(12).toString("hex"),
  };
  const started = Date.now();
  const temp = atomicTempPath(path);
  let tookOver: LockHolder | undefined;
  let delay = 5;
  try {
    await writeFile(temp, `${JSON.stringify(holder)}\n`, { flag: "wx", mode: 0o644 });
    for (;;) {
      try {
        await link(temp, path);
        return {
          path,
          holder,
          tookOver,
          release: async () => {
            const current = await readLockHolder(path).catch(() => undefined);
            if (current?.nonce === holder.nonce) await unlink(path).catch(() => undefined);
          },
        };
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== "EEXIST") throw cause;
      }
      const current = await readLockHolder(path);
      if (current === undefined) continue;
      let stale: boolean;
      if (current === null || current.hostname !== hostname()) stale = ((await ageMs(path)) ?? 0) > UNCHECKABLE_STALE_MS;
      else stale = !isHolderAlive(current);
      if (stale) {
        if (await breakStale(path, current === null ? undefined : current.nonce, holder)) tookOver = current ?? undefined;
        else await sleep(2);
        continue;
      }
      const waited = Date.now() - started;
      if (waited >= options.timeoutMs) {
        const who = current === null ? "an unknown process" : `pid ${current.pid} (since ${current.acquiredAt})`;
        throw new CoyoteError("STORE_ERR_LOCKED", `locking ${options.what ?? path}: held by ${who}; gave up after ${waited} ms`);
      }
      await sleep(Math.min(delay, options.timeoutMs - waited));
      delay = Math.min(delay * 2, 100);
    }
  } catch (cause) {
    if (cause instanceof CoyoteError) throw cause;
    throw new CoyoteError("STORE_ERR_IO", `locking ${options.what ?? path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
