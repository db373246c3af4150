import { randomBytes } from "node:crypto";
import { constants, statSync, type Stats } from "node:fs";
import { chmod, lstat, open, readdir, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CoyoteError } from "./errors.ts";

/**
 * Atomic and durable file writes (docs/ARCHITECTURE.md, "On disk": every file write is atomic). A reader sees
 * either the whole old file or the whole new one, never a torn or empty one, whatever instruction
 * the writer dies at, and a power loss after the call returns does not lose the write.
 */

// `.<name>.<pid>.<12 hex>.tmp`: the dot hides it from listings of specs, the pid tells a cleaner
// whether its writer may still be alive, the random part keeps concurrent writers apart.
const TEMP_NAME = /^\.(.+)\.([0-9]+)\.[0-9a-f]{12}\.tmp$/;

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** The file's permission bits, applied before it replaces the target (secrets use 0o600). */
  readonly mode?: number;
  /**
   * Whether to fsync the file and its folder (default true). Only bookkeeping that is recreated
   * after a power loss anyway turns this off; a process crash never needs the fsync.
   */
  readonly durable?: boolean;
}

/**
 * The name of the temporary file that {@link writeFileAtomic} uses for a target, unique per call.
 * @param target the file that will be replaced.
 * @returns a path in the same folder, so that the final rename never crosses file systems.
 */
export function atomicTempPath(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/**
 * Tells a leftover temporary file of {@link writeFileAtomic} apart from other files.
 * @param name a file name (not a path).
 * @returns the pid of the process that created it, or undefined when the name is not one of ours.
 */
export function atomicTempWriter(name: string): number | undefined {
  const match = TEMP_NAME.exec(name);
  return match?.[2] === undefined ? undefined : Number(match[2]);
}

/** Fsyncs a folder so that a rename or unlink inside it survives a power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function ioError(context: string, cause: unknown): CoyoteError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new CoyoteError("STORE_ERR_IO", `${context}: ${reason}`, { cause });
}

/** One completed {@link writeFileAtomic}, as its listeners ({@link onAtomicWrite}) are told. */
export interface AtomicWrite {
  /** The file written. */
  readonly path: string;
  /** Its folder's mtime just before the write began, undefined when it could not be read. */
  readonly folderMtimeBefore: number | undefined;
  /** Its folder's mtime just after the rename, undefined when it could not be read. */
  readonly folderMtimeAfter: number | undefined;
}

const writeListeners = new Set<(write: AtomicWrite) => void>();

/**
 * Tells `listener` of every atomic write this process completes, with its folder's mtime just
 * before and after the rename: a cache of a folder's files can then tell its own process's writes
 * (which it need not look for) from a change made by anyone else (the folder's mtime moved
 * between two writes it was told of). A listener must not throw; one that does is ignored.
 * @returns a function that stops telling it.
 */
export function onAtomicWrite(listener: (write: AtomicWrite) => void): () => void {
  writeListeners.add(listener);
  return () => void writeListeners.delete(listener);
}

function folderMtime(dir: string): number | undefined {
  return statSync(dir, { throwIfNoEntry: false })?.mtimeMs;
}

/**
 * Replaces a file atomically: writes a temporary file in the same folder, fsyncs it, renames it
 * over the target and fsyncs the folder. On failure the temporary file is removed and the target
 * keeps its old content.
 * @param path the file to write.
 * @param data the whole new content.
 * @param options the mode of the new file, and whether to fsync.
 * @throws CoyoteError STORE_ERR_IO naming the file when anything fails.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const temp = atomicTempPath(path);
  const durable = options.durable ?? true;
  // Taken before the temporary file is made (which changes the folder too), and only when
  // someone listens: two stats of the folder per write otherwise cost for nothing.
  const before = writeListeners.size > 0 ? folderMtime(dirname(path)) : undefined;
  let created = false;
  try {
    // O_EXCL: never follow or reuse whatever else might sit at the temporary name.
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, options.mode ?? 0o666);
    created = true;
    try {
      // The umask may have cleared bits of the requested mode; set it exactly, before the content.
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    created = false;
    if (writeListeners.size > 0) {
      const write: AtomicWrite = { path, folderMtimeBefore: before, folderMtimeAfter: folderMtime(dirname(path)) };
      for (const listener of writeListeners) {
        try {
          listener(write);
        } catch {
          // A listener's fault is not the write's: the file is in place.
        }
      }
    }
    if (durable) await fsyncDir(dirname(path));
  } catch (cause) {
    if (created) await unlink(temp).catch(() => undefined);
    throw ioError(`writing ${path}`, cause);
  }
}

/**
 * Appends one line to an append-only file (JSONL) durably. The line is written by a single
 * `write` on a descriptor opened with O_APPEND, so concurrent appenders never interleave inside a
 * line, then fsynced. When the file does not end with a newline (a line torn by a power loss), a
 * newline is written first so that the torn line does not swallow this one.
 * @param path the file, created when missing.
 * @param line one line without a newline; the newline is added.
 * @param options the mode of the file when it is created.
 * @throws CoyoteError STORE_ERR_IO when the line holds a newline or writing fails.
 */
export async function appendLineDurable(path: string, line: string, options: { mode?: number } = {}): Promise<void> {
  if (line.includes("\n") || line.includes("\r")) {
    throw new CoyoteError("STORE_ERR_IO", `appending to ${path}: a line must not contain a line break`);
  }
  try {
    let created = true;
    let handle = await open(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL, options.mode ?? 0o666).catch(
      (error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        return undefined;
      },
    );
    if (handle === undefined) {
      created = false;
      handle = await open(path, constants.O_RDWR | constants.O_APPEND);
    }
    try {
      let text = `${line}\n`;
      if (!created) {
        const { size } = await handle.stat();
        if (size > 0) {
          const last = Buffer.alloc(1);
          await handle.read(last, 0, 1, size - 1);
          if (last[0] !== 0x0a) text = `\n${text}`;
        }
      }
      const bytes = Buffer.from(text, "utf8");
      const { bytesWritten } = await handle.write(bytes, 0, bytes.length);
      // A regular file on a local file system takes the whole buffer in one write; a short write
      // would mean a full disk, which must not pass silently.
      if (bytesWritten !== bytes.length) throw new Error(`short write (${bytesWritten} of ${bytes.length} bytes)`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (created) await fsyncDir(dirname(path));
  } catch (cause) {
    throw ioError(`appending to ${path}`, cause);
  }
}

/** Options of {@link removeStaleTempFiles}. */
export interface RemoveStaleTempFilesOptions {
  /**
   * Remove every temporary file, even of a live writer. Only for folders whose writers all hold a
   * lock that the caller holds now.
   */
  readonly all?: boolean;
  /** A temporary file older than this is removed even when its pid is alive (pid reuse). */
  readonly maxAgeMs?: number;
}

/**
 * Removes the temporary files that writers killed inside {@link writeFileAtomic} left behind in a
 * folder. A file is stale when `all` is set, when the process named in its name is gone, or when
 * it is older than `maxAgeMs` (default one hour, far longer than any write takes).
 * @param dir the folder to clean (not recursive).
 * @param options which files count as stale.
 * @returns the paths removed.
 */
export async function removeStaleTempFiles(dir: string, options: RemoveStaleTempFilesOptions = {}): Promise<string[]> {
  const maxAgeMs = options.maxAgeMs ?? 3_600_000;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw ioError(`cleaning ${dir}`, cause);
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = atomicTempWriter(name);
    if (pid === undefined) continue;
    const path = join(dir, name);
    let stale = options.all === true || !isPidAlive(pid);
    if (!stale) {
      const stats: Stats | undefined = await lstat(path).catch(() => undefined);
      stale = stats !== undefined && Date.now() - stats.mtimeMs > maxAgeMs;
    }
    if (!stale) continue;
    try {
      await unlink(path);
      removed.push(path);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cleaning ${dir}`, cause);
    }
  }
  return removed;
}

/**
 * Whether a process with this pid exists (of any user). A pid may have been reused by another
 * process; callers that must know use the start time too (see lock.ts).
 */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Sets a folder's mode exactly, whatever the umask did when it was created (secrets/ is 0700).
 * @throws CoyoteError STORE_ERR_IO when it fails.
 */
export async function chmodExact(path: string, mode: number): Promise<void> {
  try {
    await chmod(path, mode);
  } catch (cause) {
    throw ioError(`setting the mode of ${path}`, cause);
  }
}
