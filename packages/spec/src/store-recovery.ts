/**
 * Recovery of the specs repository after a crash: stale git locks and temporary files go, and a
 * work tree left ahead of the branch is committed, finishing the journaled commit when it can.
 */
import { lstat, readdir, readFile, unlink } from "node:fs/promises";
import { basename, join, relative as relativePath } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { atomicTempWriter, removeStaleTempFiles } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";
import { blobId } from "./git.ts";
import { idOfRepoPath, ioError, isNotFound, type Change, type HeadState } from "./spec-files.ts";
import { BRANCH, type SpecRepo } from "./spec-repo.ts";
import { PENDING_JOURNAL, RECOVER_MESSAGE, STATE_LAYOUT, type RecoveryReport } from "./store-types.ts";

// A git lock file this old cannot belong to a git process of ours still finishing its work (they
// take milliseconds); one that is younger is waited for.
const GIT_LOCK_STALE_MS = 2_000;

/** A report of a recovery that has found nothing yet. */
export function emptyReport(): RecoveryReport {
  return { tookOverLockOf: undefined, gitLocksRemoved: [], tempFilesRemoved: [], completed: undefined, committed: undefined };
}

/** Whether a recovery repaired anything (and so is worth logging). */
export function didSomething(report: RecoveryReport): boolean {
  return (
    report.tookOverLockOf !== undefined ||
    report.gitLocksRemoved.length > 0 ||
    report.tempFilesRemoved.length > 0 ||
    report.completed !== undefined ||
    report.committed !== undefined
  );
}

// The lock files of the repository's top folder that a killed git process may leave.
const GIT_LOCKS = ["index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock"];

async function listNames(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (cause) {
    if (isNotFound(cause)) return [];
    throw ioError(`listing ${dir}`, cause);
  }
}

/** Removes git lock files that a killed git process left, waiting for young ones to go away. */
async function clearGitLocks(repo: SpecRepo, report: RecoveryReport): Promise<void> {
  const gitDir = repo.git.gitDir;
  const candidates = GIT_LOCKS.map((name) => join(gitDir, name));
  const heads = join(gitDir, "refs", "heads");
  for (const name of await readdir(heads).catch(() => [] as string[])) if (name.endsWith(".lock")) candidates.push(join(heads, name));
  for (const path of candidates) {
    for (;;) {
      const stats = await lstat(path).catch(() => undefined);
      if (stats === undefined) break;
      // We hold the store lock, so no live writer of ours owns this file; a git process of a
      // writer killed a moment ago may, and finishes within milliseconds: wait for it.
      if (Date.now() - stats.mtimeMs < GIT_LOCK_STALE_MS) {
        await sleep(20);
        continue;
      }
      try {
        await unlink(path);
        report.gitLocksRemoved.push(relativePath(repo.root, path));
      } catch (cause) {
        if (!isNotFound(cause)) throw ioError(`removing stale git lock ${path}`, cause);
      }
      break;
    }
  }
}

/**
 * Brings the specs back to a consistent state after a crash (runs under the lock before every
 * write): stale git locks and temporary files go, and a work tree ahead of the branch is
 * committed (finishing the journaled commit when the work tree is on its way to it).
 */
export async function recover(repo: SpecRepo, report: RecoveryReport, opening: boolean): Promise<void> {
  // Every write starts here, so the common case costs two folder listings: no journal, no lock
  // or temporary file of a crashed writer, nothing taken over, no failed write of ours. Temporary
  // spec files need no look: only a writer holding the lock makes them, and one that died holding
  // it is a takeover.
  const [gitNames, headNames] = await Promise.all([listNames(repo.git.gitDir), listNames(join(repo.git.gitDir, "refs", "heads"))]);
  const leftovers = gitNames.some((name) => name === basename(PENDING_JOURNAL) || GIT_LOCKS.includes(name) || atomicTempWriter(name) !== undefined) || headNames.some((name) => name.endsWith(".lock"));
  if (!opening && report.tookOverLockOf === undefined && !repo.writeFailed && !leftovers) return;
  await clearGitLocks(repo, report);
  // Spec files and the journal are only written under the lock we hold: every temporary file
  // there is left over.
  for (const dir of [join(repo.root, "specs"), join(repo.root, "specs", "services"), repo.git.gitDir]) {
    for (const path of await removeStaleTempFiles(dir, { all: true })) report.tempFilesRemoved.push(relativePath(repo.root, path));
  }
  if (opening) {
    // The other folders are written without the lock: only dead writers' temporary files go.
    for (const folder of ["", ...STATE_LAYOUT.map(([f]) => f).filter((f) => !f.startsWith("specs"))]) {
      for (const path of await removeStaleTempFiles(join(repo.root, folder))) report.tempFilesRemoved.push(relativePath(repo.root, path));
    }
  }
  // Comparing every spec file with HEAD costs a read of every spec, so it is done only when a
  // write may have been interrupted: at open, after taking over a dead holder's lock, when the
  // pending-commit journal or a crashed writer's leftovers are there, or after a write of this
  // process failed. A clean handover between writers needs no comparison.
  const suspect = opening || report.tookOverLockOf !== undefined || report.gitLocksRemoved.length > 0 || report.tempFilesRemoved.length > 0
    || repo.writeFailed || (await readFile(join(repo.root, PENDING_JOURNAL), "utf8").then(() => true, () => false));
  if (!suspect) return;
  repo.writeFailed = false;
  for (let attempt = 0; attempt < 20; attempt++) {
    const head = await repo.headState();
    const work = await repo.readWorkTree();
    const headSpecs = new Map([...head.files].filter(([path]) => idOfRepoPath(path) !== undefined));
    const differing = [...new Set([...headSpecs.keys(), ...work.keys()])].filter((path) => {
      const content = work.get(path);
      return (content === undefined ? undefined : blobId(content)) !== headSpecs.get(path)?.oid;
    });
    if (differing.length === 0) return;
    if (await finishPending(repo, head, work, report)) continue;
    const changes = differing.map((path) => ({ path, content: work.get(path) ?? null }));
    const files = new Map(head.files);
    for (const change of changes) {
      if (change.content === null) files.delete(change.path);
      else files.set(change.path, { mode: "100644", type: "blob", oid: await repo.git.writeBlob(change.content) });
    }
    const tree = await repo.git.writeTree(files);
    const commit = await repo.git.commitTree(tree, head.commit, RECOVER_MESSAGE, repo.committer, repo.committer);
    if ((await repo.git.updateRef(BRANCH, commit, head.commit, RECOVER_MESSAGE)) === "updated") {
      repo.setHead({ commit, files });
      report.committed = commit;
      return;
    }
    // The branch moved under us: a git process of the crashed writer finishing its ref update.
    // Look again.
    await sleep(20);
  }
  throw new CoyoteError("STORE_ERR_GIT", "recovering the specs: the branch keeps moving while the store lock is held");
}

/**
 * Finishes the journaled commit when the work tree is on its way to it: the commit's parent is
 * the head and every spec file is either as at the head or as in the commit.
 * @returns whether the branch now points at the journaled commit.
 */
async function finishPending(repo: SpecRepo, head: HeadState, work: ReadonlyMap<string, Buffer>, report: RecoveryReport): Promise<boolean> {
  const text = await readFile(join(repo.root, PENDING_JOURNAL), "utf8").catch(() => "");
  const pending = text.trim();
  if (!/^[0-9a-f]{40}$/.test(pending) || !(await repo.git.hasObject(pending, "commit"))) return false;
  const info = await repo.git.readCommit(pending);
  if (info.parents.length !== 1 || info.parents[0] !== head.commit) return false;
  const targetFiles = await repo.git.lsTree(pending);
  const target = new Map([...targetFiles].filter(([path]) => idOfRepoPath(path) !== undefined));
  const paths = new Set([...head.files.keys(), ...work.keys(), ...target.keys()].filter((path) => idOfRepoPath(path) !== undefined));
  const todo: Change[] = [];
  const blobs = await repo.git.readBlobs([...target.values()].map((e) => e.oid));
  for (const path of paths) {
    const content = work.get(path);
    const now = content === undefined ? undefined : blobId(content);
    const before = head.files.get(path)?.oid;
    const after = target.get(path)?.oid;
    if (now === after) continue;
    if (now !== before) return false;
    const bytes = after === undefined ? null : blobs.get(after);
    if (bytes === undefined) return false;
    todo.push({ path, content: bytes });
  }
  await repo.applyToWorkTree(todo);
  const firstLine = info.message.split("\n")[0] ?? "";
  if ((await repo.git.updateRef(BRANCH, pending, head.commit, firstLine)) === "moved") return false;
  repo.setHead({ commit: pending, files: targetFiles });
  report.completed = pending;
  return true;
}
