import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CoyoteError } from "./errors.ts";

/**
 * A thin layer over the `git` binary for the specs repository. It uses plumbing only (objects,
 * trees, commits and a compare-and-swap ref update), never the index or the working tree, so a
 * write takes no lock but the ref's own and a process killed at any point leaves nothing that a
 * later git command trips over.
 */

/** The id of the empty tree in a SHA-1 repository. */
export const EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/** The all-zero object id: as the old value of a ref update it means "the ref must not exist". */
export const ZERO_OID = "0".repeat(40);

const OID = /^[0-9a-f]{40}$/;

/** A person as git records them. */
export interface GitIdentity {
  /** The name, e.g. "Ada Admin". */
  readonly name: string;
  /** The e-mail address. */
  readonly email: string;
}

/** One file (or submodule) of a tree, flattened: its mode, type and object id. */
export interface TreeEntry {
  /** The mode as `ls-tree` prints it: `100644`, `100755`, `120000` or `160000`. */
  readonly mode: string;
  /** The object type. */
  readonly type: "blob" | "commit";
  /** The object id. */
  readonly oid: string;
}

/** A whole tree flattened to its files: path (with `/`) → entry. */
export type FlatTree = ReadonlyMap<string, TreeEntry>;

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

/** The id git gives a blob with this content. */
export function blobId(content: Uint8Array): string {
  return createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");
}

interface TreeObject {
  readonly oid: string;
  readonly entries: ReadonlyArray<{ mode: string; type: "blob" | "commit" | "tree"; oid: string; name: string }>;
}

// Git sorts tree entries by name bytes, a subtree's name compared as if it ended with "/".
function treeSortKey(entry: { name: string; type: string }): string {
  return entry.type === "tree" ? `${entry.name}/` : entry.name;
}

/**
 * Builds the tree objects of a flattened tree, children before parents, with their ids computed
 * here so that the whole hierarchy can go to one `git mktree --batch`.
 * @returns the root tree's id and every tree object, root last.
 */
export function buildTrees(files: FlatTree): { root: string; trees: TreeObject[] } {
  interface Dir {
    readonly files: Map<string, TreeEntry>;
    readonly dirs: Map<string, Dir>;
  }
  const top: Dir = { files: new Map(), dirs: new Map() };
  for (const [path, entry] of files) {
    const parts = path.split("/");
    const name = parts.pop();
    if (name === undefined || name === "" || parts.some((p) => p === "" || p === "." || p === "..")) {
      throw new CoyoteError("STORE_ERR_GIT", `building a tree: bad path ${JSON.stringify(path)}`);
    }
    let dir = top;
    for (const part of parts) {
      let next = dir.dirs.get(part);
      if (next === undefined) {
        next = { files: new Map(), dirs: new Map() };
        dir.dirs.set(part, next);
      }
      dir = next;
    }
    dir.files.set(name, entry);
  }
  const trees: TreeObject[] = [];
  const visit = (dir: Dir): string => {
    const entries: Array<{ mode: string; type: "blob" | "commit" | "tree"; oid: string; name: string }> = [];
    for (const [name, sub] of dir.dirs) entries.push({ mode: "040000", type: "tree", oid: visit(sub), name });
    for (const [name, file] of dir.files) entries.push({ mode: file.mode, type: file.type, oid: file.oid, name });
    entries.sort((a, b) => Buffer.compare(Buffer.from(treeSortKey(a)), Buffer.from(treeSortKey(b))));
    const body = Buffer.concat(
      entries.map((e) => Buffer.concat([Buffer.from(`${e.mode.replace(/^0+/, "")} ${e.name}\0`), Buffer.from(e.oid, "hex")])),
    );
    const oid = createHash("sha1").update(`tree ${body.length}\0`).update(body).digest("hex");
    trees.push({ oid, entries });
    return oid;
  };
  const root = visit(top);
  return { root, trees };
}

function gitEnvironment(gitDir: string): NodeJS.ProcessEnv {
  // Built up from the inherited variables (a cast, since some type packages make NODE_ENV required).
  const env = {} as NodeJS.ProcessEnv;
  // Inherited GIT_* variables (GIT_DIR, GIT_INDEX_FILE, GIT_WORK_TREE from a hook...) would point
  // the commands elsewhere; the user's and the system's config (gpg signing, hooks, pagers) would
  // change what they do. Only the repository's own config counts.
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("GIT_")) env[key] = value;
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
  readonly #env: NodeJS.ProcessEnv;

  /**
   * Describes a repository; nothing is run yet.
   * @param workTree the folder holding `.git`.
   * @param binary the git binary, found on PATH by default.
   */
  constructor(workTree: string, binary = "git") {
    this.workTree = workTree;
    this.gitDir = join(workTree, ".git");
    this.binary = binary;
    this.#env = gitEnvironment(this.gitDir);
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
   * Reads where a branch points: the loose ref file when there is one (no process needed), else
   * through git (packed refs).
   * @returns the commit id, or undefined when the branch does not exist.
   */
  async readRef(ref = "refs/heads/main"): Promise<string | undefined> {
    try {
      const text = (await readFile(join(this.gitDir, ref), "utf8")).trim();
      if (OID.test(text)) return text;
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new CoyoteError("STORE_ERR_GIT", `reading ${ref}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
      }
    }
    const result = await this.run(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { allowFailure: true });
    const oid = result.stdout.toString("utf8").trim();
    return result.code === 0 && OID.test(oid) ? oid : undefined;
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
   * Stores a blob and checks that git agrees on its id.
   * @returns the blob's id.
   */
  async writeBlob(content: Uint8Array): Promise<string> {
    const oid = await this.#text(["hash-object", "-w", "--stdin"], { input: content });
    if (oid !== blobId(content)) throw new CoyoteError("STORE_ERR_GIT", `git hash-object: returned ${oid}, expected ${blobId(content)}`);
    return oid;
  }

  /**
   * Stores the trees of a flattened tree in one `git mktree --batch` and checks their ids.
   * @returns the root tree's id.
   */
  async writeTree(files: FlatTree): Promise<string> {
    if (files.size === 0) {
      // mktree --batch writes nothing for empty input; plain mktree stores the empty tree, which a
      // commit needs as a real object for `git fsck` to be happy.
      const oid = await this.#text(["mktree", "-z"]);
      if (oid !== EMPTY_TREE) throw new CoyoteError("STORE_ERR_GIT", `git mktree: returned ${oid} for the empty tree`);
      return oid;
    }
    const { root, trees } = buildTrees(files);
    const input = trees.map((tree) => tree.entries.map((e) => `${e.mode} ${e.type} ${e.oid}\t${e.name}\0`).join("")).join("\0");
    const ids = (await this.#text(["mktree", "-z", "--batch"], { input })).split("\n");
    const expected = trees.map((tree) => tree.oid);
    if (ids.join(",") !== expected.join(",")) {
      throw new CoyoteError("STORE_ERR_GIT", `git mktree: returned ${ids.join(",")}, expected ${expected.join(",")}`);
    }
    return root;
  }

  /**
   * Makes a commit object (no ref moves).
   * @returns the commit's id.
   */
  async commitTree(tree: string, parent: string | undefined, message: string, author: GitIdentity, committer: GitIdentity): Promise<string> {
    const args = ["commit-tree", "--no-gpg-sign", ...(parent === undefined ? [] : ["-p", parent]), tree];
    const oid = await this.#text(args, {
      input: message.endsWith("\n") ? message : `${message}\n`,
      env: {
        GIT_AUTHOR_NAME: author.name,
        GIT_AUTHOR_EMAIL: author.email,
        GIT_COMMITTER_NAME: committer.name,
        GIT_COMMITTER_EMAIL: committer.email,
      },
    });
    if (!OID.test(oid)) throw new CoyoteError("STORE_ERR_GIT", `git commit-tree: unexpected output ${JSON.stringify(oid)}`);
    return oid;
  }

  /**
   * Moves a branch from `oldOid` to `newOid` atomically, failing when it is not at `oldOid`
   * (compare-and-swap). A ref lock held by another git process for a moment is waited for.
   * @returns "updated", or "moved" when the branch was not at `oldOid`.
   * @throws CoyoteError STORE_ERR_GIT for any other failure.
   */
  async updateRef(ref: string, newOid: string, oldOid: string, reason: string): Promise<"updated" | "moved"> {
    for (let attempt = 0; ; attempt++) {
      const result = await this.run(["update-ref", "-m", reason.split("\n")[0] ?? reason, ref, newOid, oldOid], { allowFailure: true });
      if (result.code === 0) return "updated";
      const current = await this.readRef(ref);
      if (current !== (oldOid === ZERO_OID ? undefined : oldOid)) return "moved";
      // Still at the old value: the ref's lock file was held (by a git process of a writer that
      // was killed a moment ago); retry for a while before calling it a failure.
      if (attempt >= 50 || !/\.lock|unable to (create|lock)/i.test(result.stderr)) {
        throw new CoyoteError("STORE_ERR_GIT", `git update-ref ${ref}: ${result.stderr.trim().split("\n").join("; ")}`, { cause: result });
      }
      await sleep(20);
    }
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
