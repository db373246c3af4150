import { spawn } from "node:child_process";
import { join } from "node:path";
import { environmentWithoutGit } from "./env.ts";
import { CoyoteError } from "./errors.ts";
import { buildTrees, commitObject, gitObject, LooseObjectWriter, type FlatTree, type GitIdentity, type GitObject, type TreeEntry } from "./git-objects.ts";
import { prepareRef, readRef, updateRef } from "./git-refs.ts";

export { blobId, buildTrees, type FlatTree, type GitIdentity, type TreeEntry } from "./git-objects.ts";
export { ZERO_OID } from "./git-refs.ts";

/**
 * The specs repository through plumbing only (objects, trees, commits and a compare-and-swap ref
 * update), never the index or the working tree, so a write takes no lock but the ref's own and a
 * process killed at any point leaves nothing that a later git command trips over. The objects and
 * the ref of a commit are written in-process (`git-objects.ts`, `git-refs.ts`) in git's own
 * formats; reading the history, diffs and the rarer commands run the `git` binary.
 */

/** The id of the empty tree in a SHA-1 repository. */
export const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

const OID = /^[0-9a-f]{40}$/;

/** A commit as read by {@link GitRepo.readCommit}. */
export interface CommitInfo {
  /** The commit's id. */
  readonly oid: string;
  /** Its root tree. */
  readonly tree: string;
  /** Its parents, none for the first commit. */
  readonly parents: readonly string[];
  /** Its message. */
  readonly message: string;
}

/** One entry of {@link GitRepo.log}. */
export interface LogEntry {
  /** The commit id. */
  readonly revision: string;
  /** Who made the change. */
  readonly author: GitIdentity;
  /** When, ISO 8601 UTC. */
  readonly date: string;
  /** The full message, without its trailing newline. */
  readonly message: string;
  /** The files the commit changed, relative to the repository. */
  readonly files: string[];
}

/** The output of one git command. */
export interface GitResult {
  /** The exit code (null when killed). */
  readonly code: number | null;
  /** Standard output, raw. */
  readonly stdout: Buffer;
  /** Standard error, as text. */
  readonly stderr: string;
}

function gitEnvironment(gitDir: string): NodeJS.ProcessEnv {
  // The user's and the system's config (gpg signing, hooks, pagers) would change what the
  // commands do: only the repository's own config counts.
  const env = environmentWithoutGit();
  return {
    ...env,
    // Explicit, never discovered: a missing or broken specs/.git must not make git walk up to an
    // enclosing repository (the dev state folder lives inside the monorepo's checkout).
    GIT_DIR: gitDir,
    GIT_CONFIG_NOSYSTEM: "1",
    GIT_CONFIG_GLOBAL: "/dev/null",
    GIT_ATTR_NOSYSTEM: "1",
    GIT_TERMINAL_PROMPT: "0",
    GIT_OPTIONAL_LOCKS: "0",
    GIT_NO_REPLACE_OBJECTS: "1",
    LC_ALL: "C",
  };
}

/** Options of {@link GitRepo.run}. */
export interface RunOptions {
  /** Bytes for standard input. */
  readonly input?: string | Uint8Array;
  /** More environment variables (author and committer). */
  readonly env?: Readonly<Record<string, string>>;
  /** Return a failed command's result instead of throwing. */
  readonly allowFailure?: boolean;
}

/** One repository with its work tree (the work tree is never touched by git here). */
export class GitRepo {
  /** The work tree: the specs folder. */
  readonly workTree: string;
  /** The repository: `<workTree>/.git`. */
  readonly gitDir: string;
  /** The git binary. */
  readonly binary: string;

  /** The identity of reflog lines (git takes the repository's `user.name`, which `init` sets to it). */
  readonly identity: GitIdentity;
  readonly #env: NodeJS.ProcessEnv;
  readonly #objects: LooseObjectWriter;

  /**
   * Describes a repository; nothing is run yet.
   * @param workTree the folder holding `.git`.
   * @param binary the git binary, found on PATH by default.
   * @param identity who moves the branch, as the reflog records it.
   */
  constructor(workTree: string, binary = "git", identity: GitIdentity = { name: "Coyote", email: "coyote@localhost" }) {
    this.workTree = workTree;
    this.gitDir = join(workTree, ".git");
    this.binary = binary;
    this.identity = identity;
    this.#env = gitEnvironment(this.gitDir);
    this.#objects = new LooseObjectWriter(this.gitDir);
  }

  /** The environment every git command of this repository runs with. */
  get env(): NodeJS.ProcessEnv {
    return this.#env;
  }

  /**
   * Runs one git command in the repository.
   * @param args the arguments after `git`.
   * @param options input, extra environment, whether a failure throws.
   * @throws CoyoteError STORE_ERR_GIT with git's own message when it fails (unless allowed).
   */
  run(args: readonly string[], options: RunOptions = {}): Promise<GitResult> {
    // core.fsync=committed: objects and refs reach the disk before a ref points at them.
    const argv = ["-c", "core.fsync=committed", "-c", `safe.directory=${this.workTree}`, ...args];
    return new Promise((resolve, reject) => {
      const child = spawn(this.binary, argv, {
        cwd: this.workTree,
        env: options.env === undefined ? this.#env : { ...this.#env, ...options.env },
        stdio: ["pipe", "pipe", "pipe"],
        timeout: 60_000,
        killSignal: "SIGKILL",
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
      // git may exit before reading all of its input (on an error); that is reported by its exit.
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input ?? "");
      child.on("error", (cause) => {
        reject(new CoyoteError("STORE_ERR_GIT", `git ${args[0] ?? ""}: cannot run ${this.binary}: ${cause.message}`, { cause }));
      });
      child.on("close", (code, signal) => {
        const result: GitResult = { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString("utf8") };
        if (code === 0 || options.allowFailure === true) {
          resolve(result);
          return;
        }
        const why = result.stderr.trim().split("\n").join("; ") || (signal === null ? `exit code ${code ?? "?"}` : `killed by ${signal}`);
        reject(new CoyoteError("STORE_ERR_GIT", `git ${args[0] ?? ""}: ${why}`, { cause: result }));
      });
    });
  }

  async #text(args: readonly string[], options?: RunOptions): Promise<string> {
    return (await this.run(args, options)).stdout.toString("utf8").trim();
  }

  /**
   * Creates the repository (idempotent: an existing one is left as it is) with branch `main`, no
   * sample hooks, and a repo-local identity so that commits work without a global git config.
   */
  async init(identity: GitIdentity): Promise<void> {
    await this.run(["init", "--quiet", "--template=", "--initial-branch=main", this.workTree]);
    const settings: Array<[string, string]> = [
      ["user.name", identity.name],
      ["user.email", identity.email],
      ["core.fsync", "committed"],
      ["core.logAllRefUpdates", "true"],
      ["commit.gpgSign", "false"],
    ];
    for (const [key, value] of settings) await this.run(["config", key, value]);
  }

  /**
   * Reads where a branch points: its loose ref file, else its line in `packed-refs`.
   * @returns the commit id, or undefined when the branch does not exist.
   */
  async readRef(ref = "refs/heads/main"): Promise<string | undefined> {
    return readRef(this.gitDir, ref);
  }

  /**
   * Lists every file of a commit's tree.
   * @param commit a commit id.
   */
  async lsTree(commit: string): Promise<Map<string, TreeEntry>> {
    const out = (await this.run(["ls-tree", "-r", "-z", "--full-tree", commit, "--"])).stdout.toString("utf8");
    const files = new Map<string, TreeEntry>();
    for (const record of out.split("\0")) {
      if (record === "") continue;
      const match = /^([0-7]{6}) (blob|commit) ([0-9a-f]{40})\t(.+)$/s.exec(record);
      if (match?.[1] === undefined || match[3] === undefined || match[4] === undefined) {
        throw new CoyoteError("STORE_ERR_GIT", `git ls-tree ${commit}: unexpected line ${JSON.stringify(record)}`);
      }
      files.set(match[4], { mode: match[1], type: match[2] === "commit" ? "commit" : "blob", oid: match[3] });
    }
    return files;
  }

  /**
   * Stores a blob, synced.
   * @returns the blob's id.
   */
  async writeBlob(content: Uint8Array): Promise<string> {
    const blob = gitObject("blob", Buffer.from(content));
    await this.#objects.write([blob]);
    return blob.oid;
  }

  /**
   * Stores the trees of a flattened tree (the empty tree too: a commit needs it as a real object
   * for `git fsck`), synced.
   * @returns the root tree's id.
   */
  async writeTree(files: FlatTree): Promise<string> {
    const { root, trees } = buildTrees(files);
    await this.#objects.write(trees);
    return root;
  }

  /**
   * Makes a commit object as `git commit-tree` does (no ref moves), synced.
   * @returns the commit's id.
   */
  async commitTree(tree: string, parent: string | undefined, message: string, author: GitIdentity, committer: GitIdentity): Promise<string> {
    const commit = commitObject(tree, parent === undefined ? [] : [parent], message, author, committer);
    await this.#objects.write([commit]);
    return commit.oid;
  }

  /**
   * Stores objects made in this process (see `commitObjects`), all written and synced
   * concurrently: nothing points at them until a ref moves.
   */
  async storeObjects(objects: readonly GitObject[]): Promise<void> {
    await this.#objects.write(objects);
  }

  /**
   * Moves a branch from `oldOid` to `newOid` atomically, failing when it is not at `oldOid`
   * (compare-and-swap), with a reflog line as `git update-ref -m` writes (see `git-refs.ts`).
   * @param prepared what {@link GitRepo.prepareRef} wrote for this move, if anything.
   * @returns "updated", or "moved" when the branch was not at `oldOid`.
   * @throws CoyoteError STORE_ERR_GIT for any other failure.
   */
  async updateRef(ref: string, newOid: string, oldOid: string, reason: string, prepared?: string): Promise<"updated" | "moved"> {
    return updateRef(this.gitDir, ref, newOid, oldOid, reason.split("\n")[0] ?? reason, this.identity, prepared);
  }

  /**
   * Writes and syncs what will become the branch's new value ahead of {@link GitRepo.updateRef},
   * so that the sync goes with the objects' own.
   * @returns the prepared file, for `updateRef` (which removes it in any case).
   */
  async prepareRef(ref: string, newOid: string): Promise<string> {
    return prepareRef(this.gitDir, ref, newOid);
  }

  /** Reads a commit object. */
  async readCommit(oid: string): Promise<CommitInfo> {
    const text = await this.#text(["cat-file", "commit", oid]);
    const split = text.indexOf("\n\n");
    const headers = (split === -1 ? text : text.slice(0, split)).split("\n");
    const tree = headers.find((h) => h.startsWith("tree "))?.slice(5);
    if (tree === undefined || !OID.test(tree)) throw new CoyoteError("STORE_ERR_GIT", `git cat-file ${oid}: no tree`);
    const parents = headers.filter((h) => h.startsWith("parent ")).map((h) => h.slice(7));
    return { oid, tree, parents, message: split === -1 ? "" : text.slice(split + 2) };
  }

  /**
   * Whether an object exists and has this type.
   */
  async hasObject(oid: string, type: "commit" | "blob" | "tree"): Promise<boolean> {
    const result = await this.run(["cat-file", "-t", oid], { allowFailure: true });
    return result.code === 0 && result.stdout.toString("utf8").trim() === type;
  }

  /**
   * Reads many blobs through one `git cat-file --batch`.
   * @returns object id → content.
   */
  async readBlobs(oids: readonly string[]): Promise<Map<string, Buffer>> {
    const blobs = new Map<string, Buffer>();
    const unique = [...new Set(oids)];
    if (unique.length === 0) return blobs;
    const out = (await this.run(["cat-file", "--batch"], { input: unique.map((oid) => `${oid}\n`).join("") })).stdout;
    let at = 0;
    for (const oid of unique) {
      const newline = out.indexOf(0x0a, at);
      const header = out.subarray(at, newline).toString("utf8");
      const match = /^([0-9a-f]{40}) (\w+) (\d+)$/.exec(header);
      if (match?.[3] === undefined || newline === -1) throw new CoyoteError("STORE_ERR_GIT", `git cat-file ${oid}: ${header}`);
      const size = Number(match[3]);
      blobs.set(oid, out.subarray(newline + 1, newline + 1 + size));
      at = newline + 1 + size + 1;
    }
    return blobs;
  }

  /**
   * Resolves a revision given as hex (full or abbreviated) to a commit id. Anything else is
   * refused before git sees it, so no option or revision syntax can be injected.
   * @returns the commit id, or undefined when there is no such commit.
   */
  async resolveCommit(revision: string): Promise<string | undefined> {
    if (!/^[0-9a-fA-F]{4,40}$/.test(revision)) return undefined;
    const result = await this.run(["rev-parse", "--verify", "--quiet", `${revision.toLowerCase()}^{commit}`], { allowFailure: true });
    const oid = result.stdout.toString("utf8").trim();
    return result.code === 0 && OID.test(oid) ? oid : undefined;
  }

  /** Whether `ancestor` is `descendant` or one of its ancestors. */
  async isAncestor(ancestor: string, descendant: string): Promise<boolean> {
    const result = await this.run(["merge-base", "--is-ancestor", ancestor, descendant], { allowFailure: true });
    if (result.code === 0) return true;
    if (result.code === 1) return false;
    throw new CoyoteError("STORE_ERR_GIT", `git merge-base: ${result.stderr.trim()}`, { cause: result });
  }

  /**
   * Lists commits newest first, with the files each one changed.
   * @param from the commit to start at.
   * @param options at most `limit` commits; only those touching `path`.
   */
  async log(from: string, options: { limit?: number; path?: string } = {}): Promise<LogEntry[]> {
    const args = ["log", "--no-color", "--no-renames", "--no-show-signature", "--root", "--name-only", "-z", "--format=%x1e%H%x00%an%x00%ae%x00%at%x00%B%x00"];
    if (options.limit !== undefined) args.push(`--max-count=${options.limit}`);
    args.push(from, "--");
    if (options.path !== undefined) args.push(options.path);
    const out = (await this.run(args)).stdout.toString("utf8");
    const entries: LogEntry[] = [];
    for (const record of out.split("\x1e")) {
      if (record === "") continue;
      const [revision, name, email, time, message, ...rest] = record.split("\0");
      if (revision === undefined || name === undefined || email === undefined || time === undefined || message === undefined) {
        throw new CoyoteError("STORE_ERR_GIT", `git log: unexpected record ${JSON.stringify(record.slice(0, 80))}`);
      }
      entries.push({
        revision,
        author: { name, email },
        date: new Date(Number(time) * 1000).toISOString(),
        message: message.replace(/\n+$/, ""),
        files: rest.map((f) => f.replace(/^\n/, "")).filter((f) => f !== ""),
      });
    }
    return entries;
  }

  /**
   * A unified diff between two trees or commits, paths shown under `prefix` (e.g. `specs/`).
   */
  async diff(from: string, to: string, prefix = "", context?: number): Promise<string> {
    const result = await this.run([
      "diff",
      ...(context === undefined ? [] : [`-U${context}`]),
      "--no-color",
      "--no-ext-diff",
      "--no-textconv",
      "--no-renames",
      `--src-prefix=a/${prefix}`,
      `--dst-prefix=b/${prefix}`,
      from,
      to,
      "--",
    ]);
    return result.stdout.toString("utf8");
  }
}
