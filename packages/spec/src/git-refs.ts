/**
 * Branches read and moved by this process as git's files backend does it: a loose ref file
 * (`refs/heads/main`) that wins over `packed-refs`, moved by compare-and-swap under the ref's
 * lock file `<ref>.lock` (created exclusively, written, synced, then renamed over the ref), with
 * the reflog lines git would write appended while the lock is held. A `git` command running at
 * the same time (a `git gc` expiring the reflog, a person's `git update-ref`) takes the same lock,
 * so the two never interleave.
 */
import { constants } from "node:fs";
import { appendFile, link, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { atomicTempPath } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";
import { formatIdent, type GitIdentity } from "./git-objects.ts";

/** The all-zero object id: as the old value of a ref update it means "the ref must not exist". */
export const ZERO_OID = "0".repeat(40);

const OID = /^[0-9a-f]{40}$/;
const REF = /^refs\/heads\/[A-Za-z0-9][A-Za-z0-9._/-]*$/;

// A lock held by a git process (git gc's reflog expiry) lasts milliseconds: wait this long for it.
const LOCK_ATTEMPTS = 50;
const LOCK_RETRY_MS = 20;

function gitError(context: string, cause: unknown): CoyoteError {
  if (cause instanceof CoyoteError) return cause;
  return new CoyoteError("STORE_ERR_GIT", `${context}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

function checkRef(ref: string): void {
  if (!REF.test(ref) || ref.includes("..") || ref.endsWith(".lock") || ref.includes("//")) {
    throw new CoyoteError("STORE_ERR_GIT", `not a branch name this store writes: ${JSON.stringify(ref)}`);
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT" || (cause as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw cause;
  }
}

/**
 * Where a branch points: its loose file when there is one, else its line in `packed-refs` (a
 * `git gc` or `git pack-refs` run by hand moves it there).
 * @returns the commit id, or undefined when the branch does not exist.
 * @throws CoyoteError STORE_ERR_GIT when a ref file cannot be read or holds no object id.
 */
export async function readRef(gitDir: string, ref: string): Promise<string | undefined> {
  checkRef(ref);
  try {
    const loose = await readOptional(join(gitDir, ref));
    if (loose !== undefined) {
      const oid = loose.trim();
      if (!OID.test(oid)) throw new CoyoteError("STORE_ERR_GIT", `reading ${ref}: not an object id: ${JSON.stringify(oid.slice(0, 80))}`);
      return oid;
    }
    const packed = await readOptional(join(gitDir, "packed-refs"));
    if (packed === undefined) return undefined;
    for (const line of packed.split("\n")) {
      // `# pack-refs with: ...` headers and `^<peeled id>` lines of tags are not branches.
      if (line.startsWith("#") || line.startsWith("^")) continue;
      const space = line.indexOf(" ");
      if (space === 40 && line.slice(41) === ref && OID.test(line.slice(0, 40))) return line.slice(0, 40);
    }
    return undefined;
  } catch (cause) {
    throw gitError(`reading ${ref}`, cause);
  }
}

/** git's reflog message: whitespace runs made one space, none at either end (`copy_reflog_msg`). */
export function reflogMessage(reason: string): string {
  return reason.replace(/\s+/g, " ").trim();
}

/**
 * Takes the ref's lock by linking a file that already holds the new value (synced) to the lock's
 * name: the lock appears whole, and exists only for the few steps between this and its rename,
 * so that a writer killed meanwhile rarely leaves one behind.
 */
async function linkLock(ready: string, lock: string, ref: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await link(ready, lock);
      return;
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        await mkdir(dirname(lock), { recursive: true });
        continue;
      }
      if (code !== "EEXIST" || attempt >= LOCK_ATTEMPTS) {
        throw new CoyoteError("STORE_ERR_GIT", `updating ${ref}: cannot lock it: ${code === "EEXIST" ? `${lock} exists (another git process holds it)` : cause instanceof Error ? cause.message : String(cause)}`, { cause });
      }
      await sleep(LOCK_RETRY_MS);
    }
  }
}

async function writeSynced(path: string, text: string): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o666);
  try {
    await handle.writeFile(text);
    // Objects were synced before; the ref is synced before it replaces the old one, so that after
    // a power loss it never names a commit the disk does not have.
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes the file that becomes a ref's lock and then the ref itself (see {@link updateRef}),
 * synced, so that a writer can sync it together with the objects it names.
 * @returns its path, to pass to {@link updateRef} (which removes it in any case).
 */
export async function prepareRef(gitDir: string, ref: string, newOid: string): Promise<string> {
  checkRef(ref);
  if (!OID.test(newOid) || newOid === ZERO_OID) throw new CoyoteError("STORE_ERR_GIT", `updating ${ref}: bad object id ${newOid}`);
  // Beside the repository's other files, with the name of an atomic write's temporary file, so
  // that the store's recovery removes one left by a crash.
  const ready = atomicTempPath(join(gitDir, `${basename(ref)}.lock`));
  try {
    await writeSynced(ready, `${newOid}\n`);
  } catch (cause) {
    await unlink(ready).catch(() => undefined);
    throw gitError(`updating ${ref}`, cause);
  }
  return ready;
}

/**
 * Moves a branch from `oldOid` to `newOid` atomically, failing when it is not at `oldOid`
 * (compare-and-swap), and records the move in the branch's reflog (and HEAD's when HEAD points
 * at the branch), as `git update-ref -m <reason>` does. A ref lock held by a git process for a
 * moment is waited for.
 * @param who the identity of the reflog line (git takes the repository's user.name).
 * @param prepared the file {@link prepareRef} wrote for this move, if it was prepared.
 * @returns "updated", or "moved" when the branch was not at `oldOid`.
 * @throws CoyoteError STORE_ERR_GIT for any other failure; the branch is then unchanged.
 */
export async function updateRef(gitDir: string, ref: string, newOid: string, oldOid: string, reason: string, who: GitIdentity, prepared?: string): Promise<"updated" | "moved"> {
  checkRef(ref);
  if (!OID.test(newOid) || newOid === ZERO_OID || !OID.test(oldOid)) throw new CoyoteError("STORE_ERR_GIT", `updating ${ref}: bad object ids ${newOid} ${oldOid}`);
  const path = join(gitDir, ref);
  const lock = `${path}.lock`;
  const ready = prepared ?? (await prepareRef(gitDir, ref, newOid));
  let locked = false;
  let renamed = false;
  try {
    await linkLock(ready, lock, ref);
    locked = true;
    const [current, logHead] = await Promise.all([readRef(gitDir, ref), headPointsAt(gitDir, ref), unlink(ready).catch(() => undefined)]);
    if (current !== (oldOid === ZERO_OID ? undefined : oldOid)) return "moved";
    const line = `${current ?? ZERO_OID} ${newOid} ${formatIdent(who, new Date())}${reflogMessage(reason) === "" ? "" : `\t${reflogMessage(reason)}`}\n`;
    await Promise.all([ref, ...(logHead ? ["HEAD"] : [])].map((name) => appendReflog(gitDir, name, line)));
    await rename(lock, path);
    renamed = true;
    return "updated";
  } catch (cause) {
    throw gitError(`updating ${ref}`, cause);
  } finally {
    await unlink(ready).catch(() => undefined);
    if (locked && !renamed) await unlink(lock).catch(() => undefined);
  }
}

// HEAD is a symbolic ref that this store never changes: read once per repository.
const heads = new Map<string, Promise<string | undefined>>();

async function headPointsAt(gitDir: string, ref: string): Promise<boolean> {
  let head = heads.get(gitDir);
  if (head === undefined) {
    head = readOptional(join(gitDir, "HEAD")).then((text) => text?.trim());
    heads.set(gitDir, head);
    // Only a HEAD that was there is remembered.
    head.then(
      (text) => text === undefined && heads.delete(gitDir),
      () => heads.delete(gitDir),
    );
  }
  return (await head) === `ref: ${ref}`;
}

async function appendReflog(gitDir: string, name: string, line: string): Promise<void> {
  const path = join(gitDir, "logs", name);
  try {
    await appendFile(path, line);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== "ENOENT") throw cause;
    await mkdir(dirname(path), { recursive: true });
    await appendFile(path, line);
  }
}
