/**
 * The specs repository under `COYOTE_STATE/specs`: the work tree, the branch, and the crash-safe
 * order in which a change becomes a commit. Every write runs through {@link SpecRepo.exclusive},
 * which serialises writers and recovers first.
 *
 * How a spec write stays consistent: under the store's lock, the new blob, trees and commit (git
 * objects written in-process, no index), a small journal naming the commit
 * (`specs/.git/coyote-pending`) and the new spec file under a temporary name are written first,
 * none of them visible to a reader; then the spec file is replaced atomically (from this moment
 * readers see the change); last the branch moves by compare-and-swap. A crash before the file is
 * replaced changes nothing visible. A crash after it leaves the work tree ahead of the branch, and
 * the next writer (or `open`) finishes the journaled commit, keeping its author and message; a
 * work tree that matches no journal (edited by hand, or journal lost with the power) is committed
 * as it is, as `recover: commit a change interrupted by a crash`.
 */
import { constants, type Dirent } from "node:fs";
import { lstat, mkdir, open, readdir, readFile, rename, rm, unlink } from "node:fs/promises";
import { dirname, join } from "node:path";
import { atomicTempPath, fsyncDir, writeFileAtomic } from "./atomic.ts";
import { commitObjects } from "./git-objects.ts";
import { blobId, GitRepo, ZERO_OID, type GitIdentity } from "./git.ts";
import { acquireFileLock } from "./lock.ts";
import { ContractError, CoyoteError } from "./errors.ts";
import { idOfRepoPath, ioError, isNotFound, parseSpecText, readStateText, type Change, type HeadState } from "./spec-files.ts";
import { Maintenance, type MaintenanceOptions, type MaintenanceReport } from "./store-maintenance.ts";
import { didSomething, emptyReport, recover } from "./store-recovery.ts";
import { INIT_MESSAGE, PENDING_JOURNAL, STORE_LOCK, type RecoveryReport, type SpecReadEntry } from "./store-types.ts";

/** A spec file's new content, synced under a temporary name beside it. */
interface Staged {
  /** The repository path. */
  readonly path: string;
  /** The temporary file. */
  readonly temp: string;
}

/** The branch every spec commit goes on. */
export const BRANCH = "refs/heads/main";

// Writers of one state root in this process queue here, so that two StateStore objects on the
// same root never contend for the lock file against each other.
const queues = new Map<string, Promise<unknown>>();

/** How a {@link SpecRepo} is set up. */
export interface SpecRepoOptions {
  /** The committer of every commit, and the author of init and recovery commits. */
  readonly committer: GitIdentity;
  /** How long a writer waits for another process's write lock before failing. */
  readonly lockTimeoutMs: number;
  /** The git binary (default `git` on PATH). */
  readonly git: string | undefined;
  /** Called whenever a recovery repaired something. */
  readonly onRecovery: ((report: RecoveryReport) => void) | undefined;
  /** When the history is packed. */
  readonly maintenance: MaintenanceOptions;
  /** Told of every housekeeping run. */
  readonly onMaintenance: ((report: MaintenanceReport) => void) | undefined;
}

/** The specs repository of one state folder, and the lock its writers take. */
export class SpecRepo {
  /** The state folder, absolute, symbolic links resolved. */
  readonly root: string;
  /** The git repository of `specs/`. */
  readonly git: GitRepo;
  /** The committer of every commit, and the author of init, recovery and migration commits. */
  readonly committer: GitIdentity;
  /** The housekeeping of the history (`git gc --auto` off the write path). */
  readonly maintenance: Maintenance;
  /** Set when a write of this process failed half-way: the next write compares the files with HEAD. */
  writeFailed = false;
  #head: HeadState | undefined;
  readonly #lockTimeoutMs: number;
  readonly #onRecovery: ((report: RecoveryReport) => void) | undefined;

  /**
   * @param root the state folder, absolute, symbolic links resolved.
   * @param options the committer, the lock timeout, the git binary, the recovery callback.
   */
  constructor(root: string, options: SpecRepoOptions) {
    this.root = root;
    this.git = new GitRepo(join(root, "specs"), options.git, options.committer);
    this.maintenance = new Maintenance(this.git, options.maintenance, options.onMaintenance);
    this.committer = options.committer;
    this.#lockTimeoutMs = options.lockTimeoutMs;
    this.#onRecovery = options.onRecovery;
  }

  /** Remembers the branch's new state after a commit made outside {@link SpecRepo.commitChanges}; `undefined` forgets it. */
  setHead(head: HeadState | undefined): void {
    this.#head = head;
  }

  /** A file of the state folder as text, or undefined when it does not exist. */
  readText(relative: string): Promise<string | undefined> {
    return readStateText(this.root, relative);
  }

  /** Every spec of the work tree, in StateStore.listSpecs's order: the parsed spec, or why its file is bad. */
  async readSpecs(): Promise<SpecReadEntry[]> {
    const entries: SpecReadEntry[] = [];
    for (const path of await this.listSpecFiles()) {
      const id = idOfRepoPath(path);
      if (id === undefined) continue;
      const text = await this.readText(`specs/${path}`);
      if (text === undefined) continue;
      try {
        entries.push({ id, spec: parseSpecText(text, `specs/${path}`, id) });
      } catch (error) {
        if (!(error instanceof ContractError)) throw error;
        entries.push({ id, error });
      }
    }
    return entries;
  }

  /** The current head of the specs history. */
  async head(): Promise<string> {
    const commit = await this.git.readRef(BRANCH);
    if (commit === undefined) throw new CoyoteError("STORE_ERR_GIT", "reading the specs history: the repository has no main branch");
    return commit;
  }

  /** The spec files of the work tree (repository paths), server first, then services by id. */
  async listSpecFiles(): Promise<string[]> {
    const files: string[] = [];
    const specs = join(this.root, "specs");
    try {
      if ((await lstat(join(specs, "server.json")).catch(() => undefined))?.isFile() === true) files.push("server.json");
      let entries: Dirent[] = [];
      try {
        entries = await readdir(join(specs, "services"), { withFileTypes: true });
      } catch (cause) {
        if (!isNotFound(cause)) throw cause;
      }
      const services = entries
        .filter((e) => e.isFile() && idOfRepoPath(`services/${e.name}`) !== undefined)
        .map((e) => `services/${e.name}`)
        .sort();
      files.push(...services);
    } catch (cause) {
      throw ioError("listing specs", cause);
    }
    return files;
  }

  /** The spec files of the work tree with their content: repository path → bytes. */
  async readWorkTree(): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    for (const path of await this.listSpecFiles()) {
      try {
        files.set(path, await readFile(join(this.root, "specs", path)));
      } catch (cause) {
        if (!isNotFound(cause)) throw ioError(`reading specs/${path}`, cause);
      }
    }
    return files;
  }

  /** The branch's commit and tree, read again only when the branch has moved. */
  async headState(): Promise<HeadState> {
    const commit = await this.git.readRef(BRANCH);
    if (commit === undefined) throw new CoyoteError("STORE_ERR_GIT", "reading the specs history: the repository has no main branch");
    if (this.#head?.commit !== commit) this.#head = { commit, files: await this.git.lsTree(commit) };
    return this.#head;
  }

  /**
   * A revision given by a caller, resolved to a commit of the history up to `head`.
   * @param context what is being done, for the error message ("diffing", "rolling back").
   * @throws CoyoteError STORE_ERR_UNKNOWN_REVISION for a revision that is not hex or not in the history.
   */
  async resolve(revision: string, head: string, context: string): Promise<string> {
    if (!/^[0-9a-fA-F]{4,40}$/.test(revision)) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${JSON.stringify(revision)}: not a revision (4 to 40 hex digits)`);
    }
    const commit = await this.git.resolveCommit(revision);
    if (commit === undefined) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${revision}: no such revision (or an ambiguous abbreviation) in the specs history`);
    }
    if (!(await this.git.isAncestor(commit, head))) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${revision}: the commit is not part of the specs history`);
    }
    return commit;
  }

  /**
   * Runs a write with the store to itself: queued behind this process's other writes on the same
   * root, under the cross-process lock, after a recovery.
   */
  exclusive<T>(fn: (recovery: RecoveryReport) => Promise<T>, opening = false): Promise<T> {
    const key = this.root;
    const run = (queues.get(key) ?? Promise.resolve()).then(async () => {
      const lock = await acquireFileLock(join(this.root, STORE_LOCK), { timeoutMs: this.#lockTimeoutMs, what: `the state store ${this.root}` });
      try {
        const report: RecoveryReport = { ...emptyReport(), tookOverLockOf: lock.tookOver };
        await this.#ensureRepository();
        await recover(this, report, opening);
        if (didSomething(report)) this.#onRecovery?.(report);
        try {
          return await fn(report);
        } catch (error) {
          this.writeFailed = true;
          throw error;
        }
      } finally {
        await lock.release();
      }
    });
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    queues.set(key, tail);
    void tail.then(() => {
      if (queues.get(key) === tail) queues.delete(key);
    });
    return run;
  }

  /** Creates the specs repository with its first commit when it has none yet (idempotent). */
  async #ensureRepository(): Promise<void> {
    if (this.#head !== undefined || (await this.git.readRef(BRANCH)) !== undefined) return;
    await this.git.init(this.committer);
    const tree = await this.git.writeTree(new Map());
    const commit = await this.git.commitTree(tree, undefined, INIT_MESSAGE, this.committer, this.committer);
    await this.git.updateRef(BRANCH, commit, ZERO_OID, INIT_MESSAGE);
  }

  /**
   * Stores a change as a commit and applies it to the work tree, in the crash-safe order: objects
   * and the journal first, then the files (now readers see it), then the branch.
   */
  async commitChanges(head: HeadState, changes: readonly Change[], author: GitIdentity, message: string): Promise<string> {
    const files = new Map(head.files);
    const blobs: Buffer[] = [];
    for (const change of changes) {
      if (change.content === null) files.delete(change.path);
      else {
        blobs.push(change.content);
        files.set(change.path, { mode: "100644", type: "blob", oid: blobId(change.content) });
      }
    }
    const { commit, objects } = commitObjects(files, blobs, head.commit, message, author, this.committer);
    // The objects, the journal, the new files beside their targets and the branch's next value are
    // written and synced together: none of them is visible to a reader, so their order does not
    // matter, and their syncs share the disk's flushes. Only then do the files replace the old
    // ones, and last the branch moves.
    const staged: Staged[] = [];
    let ready: string | undefined;
    const outcomes = await Promise.allSettled([
      this.git.storeObjects(objects),
      this.git.prepareRef(BRANCH, commit).then((path) => (ready = path)),
      // Only a process crash needs the journal, and the page cache survives one: no fsync. After a
      // power loss without it, the recovery commits the work tree under the recovery message.
      writeFileAtomic(join(this.root, PENDING_JOURNAL), `${commit}\n`, { durable: false }),
      ...changes.map(async (change) => {
        if (change.content !== null) staged.push({ path: change.path, temp: await this.#stage(change.path, change.content) });
      }),
    ]);
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed !== undefined) {
      await Promise.all([...staged.map((s) => s.temp), ...(ready === undefined ? [] : [ready])].map((path) => unlink(path).catch(() => undefined)));
      throw failed.reason;
    }
    try {
      await this.#place(changes, staged);
    } catch (error) {
      if (ready !== undefined) await unlink(ready).catch(() => undefined);
      throw error;
    }
    await this.#moveBranch(commit, head.commit, message, ready);
    this.#head = { commit, files };
    // The journal only matters while a write is under way; its absence tells the next writer that
    // no comparison of the work tree with HEAD is needed.
    await rm(join(this.root, PENDING_JOURNAL), { force: true });
    this.maintenance.afterCommit();
    return commit;
  }

  /** Writes a spec file's new content beside it under a temporary name, synced; returns that name. */
  async #stage(path: string, content: Buffer): Promise<string> {
    const target = join(this.root, "specs", path);
    const temp = atomicTempPath(target);
    try {
      const create = () => open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      const handle = await create().catch(async (cause: unknown) => {
        if (!isNotFound(cause)) throw cause;
        await mkdir(dirname(target), { recursive: true });
        return create();
      });
      try {
        // The umask may have cleared bits: spec files are 0644 whatever it is.
        await handle.chmod(0o644);
        await handle.writeFile(content);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return temp;
    } catch (cause) {
      await unlink(temp).catch(() => undefined);
      throw ioError(`writing specs/${path}`, cause);
    }
  }

  /**
   * Puts staged files in place (each rename atomic) and removes deleted ones, in the order of the
   * changes, then syncs every folder touched so that the change outlives a power loss.
   */
  async #place(changes: readonly Change[], staged: readonly Staged[]): Promise<void> {
    const temps = new Map(staged.map((s) => [s.path, s.temp]));
    const dirs = new Set<string>();
    try {
      for (const change of changes) {
        const path = join(this.root, "specs", change.path);
        const temp = temps.get(change.path);
        if (temp !== undefined) {
          await rename(temp, path).catch((cause: unknown) => Promise.reject(ioError(`writing specs/${change.path}`, cause)));
          temps.delete(change.path);
        } else {
          try {
            await unlink(path);
          } catch (cause) {
            if (!isNotFound(cause)) throw ioError(`removing specs/${change.path}`, cause);
          }
        }
        dirs.add(dirname(path));
      }
    } finally {
      await Promise.all([...temps.values()].map((temp) => unlink(temp).catch(() => undefined)));
    }
    await Promise.all([...dirs].map((dir) => fsyncDir(dir).catch((cause: unknown) => Promise.reject(ioError(`syncing ${dir}`, cause)))));
  }

  /** Writes and removes spec files atomically, then syncs the folders that lost a file. */
  async applyToWorkTree(changes: readonly Change[]): Promise<void> {
    const dirs = new Set<string>();
    for (const change of changes) {
      const path = join(this.root, "specs", change.path);
      if (change.content !== null) {
        await mkdir(dirname(path), { recursive: true }).catch((cause: unknown) => {
          throw ioError(`writing specs/${change.path}`, cause);
        });
        await writeFileAtomic(path, change.content, { mode: 0o644 });
      } else {
        try {
          await unlink(path);
          dirs.add(dirname(path));
        } catch (cause) {
          if (!isNotFound(cause)) throw ioError(`removing specs/${change.path}`, cause);
        }
      }
    }
    for (const dir of dirs) await fsyncDir(dir).catch((cause: unknown) => Promise.reject(ioError(`syncing ${dir}`, cause)));
  }

  async #moveBranch(commit: string, from: string, message: string, prepared?: string): Promise<void> {
    const outcome = await this.git.updateRef(BRANCH, commit, from, message, prepared);
    if (outcome === "moved") {
      // Nobody else moves the branch while we hold the lock; if it happens anyway, the work tree
      // (already written) is the truth and the next recovery records it.
      this.#head = undefined;
      throw new CoyoteError("STORE_ERR_GIT", `committing "${message.split("\n")[0] ?? ""}": the specs branch moved during the write`);
    }
  }
}
