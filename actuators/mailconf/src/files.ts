import type { Stats } from "node:fs";
import { chmod, chown, mkdir, stat, unlink, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { readTextIfExists, runProgram as runShared, type ProgramOutcome } from "@coyote/actuator";
import { fsyncDir, switchesToRoot, writeFileAtomic } from "@coyote/spec";
import { MailconfError } from "./errors.ts";

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** Stats a path, or undefined when it does not exist. */
export async function statOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Removes a file if it is there, durably (the folder is fsynced), so that a removal survives a
 * power loss like every write does.
 * @returns whether there was a file.
 */
export async function removeFile(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
  await fsyncDir(dirname(path));
  return true;
}

/**
 * Writes a file atomically only when its content differs, so that a converged file keeps its
 * mtime and a reader watching it sees no change.
 * @returns whether it was written.
 */
export async function writeIfChanged(path: string, text: string, mode: number): Promise<boolean> {
  if ((await readTextIfExists(path)) === text) {
    await ensureMode(path, mode);
    return false;
  }
  await writeFileAtomic(path, text, { mode });
  return true;
}

/** Sets a file's permission bits when they differ (a metadata change only). */
export async function ensureMode(path: string, mode: number): Promise<void> {
  const stats = await statOrUndefined(path);
  if (stats !== undefined && (stats.mode & 0o7777) !== mode) await chmod(path, mode);
}

/**
 * Writes a Dovecot passwd-file when its content differs. Dovecot notices a change by the file's
 * mtime in whole seconds or its size; a new file of the same size written within the same second
 * as the old one would go unnoticed, so its mtime is then moved one second past the old one.
 * @returns whether it was written.
 */
export async function writePasswdFile(path: string, text: string, mode: number): Promise<boolean> {
  const before = await statOrUndefined(path);
  if (before !== undefined && (await readTextIfExists(path)) === text) {
    await ensureMode(path, mode);
    return false;
  }
  await writeFileAtomic(path, text, { mode });
  if (before !== undefined) {
    const after = await stat(path);
    const oldSecond = Math.floor(before.mtimeMs / 1000);
    if (after.size === before.size && Math.floor(after.mtimeMs / 1000) <= oldSecond) {
      await utimes(path, after.atime, oldSecond + 1);
    }
  }
  return true;
}

/**
 * Makes a folder (and its parents) and, when asked, gives the folder itself an owner and mode.
 * Only the folder named is changed, never what is inside it.
 */
export async function ensureDir(path: string, owner?: { uid: number; gid: number; mode?: number }): Promise<void> {
  await mkdir(path, { recursive: true, mode: owner?.mode ?? 0o755 });
  if (owner === undefined) return;
  const stats = await stat(path);
  if (stats.uid !== owner.uid || stats.gid !== owner.gid) await chown(path, owner.uid, owner.gid);
  if (owner.mode !== undefined && (stats.mode & 0o7777) !== owner.mode) await chmod(path, owner.mode);
}

/** How a program run by {@link runProgram} ended. */
export type ProgramResult = Pick<ProgramOutcome, "code" | "stdout" | "stderr">;

/**
 * Runs a program without a shell and collects its output (capped at 64 KiB each), within
 * `timeoutMs` (default 60 s).
 * @throws Error when it cannot be started (ENOENT for a missing binary) or is aborted;
 *   MailconfError `MAILCONF_ERR_PROGRAM_KILLED` when it is ended by a signal (its deadline passed).
 */
export async function runProgram(file: string, args: readonly string[], options: { signal?: AbortSignal; timeoutMs?: number; asRoot?: boolean } = {}): Promise<ProgramResult> {
  // A program that insists on uid 0 (Postfix's `postfix`), run by a process that is not root but
  // may switch users (a production box's minion): the child becomes root before it runs it.
  const root = options.asRoot === true && switchesToRoot() ? { uid: 0, gid: 0 } : {};
  const result = await runShared(file, args, { timeoutMs: options.timeoutMs ?? 60_000, maxOutput: 65536, ...(options.signal === undefined ? {} : { signal: options.signal }), ...root });
  if (result.signal !== undefined) {
    throw new MailconfError("MAILCONF_ERR_PROGRAM_KILLED", `${file} ${args.join(" ")} was ended by ${result.signal}${result.timedOut ? " (its deadline passed)" : ""}`);
  }
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}
