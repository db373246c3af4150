import type { Dirent } from "node:fs";
import { lstat, mkdir, readdir, readFile, realpath, rm, unlink } from "node:fs/promises";
import { dirname, isAbsolute, join, relative as relativePath, resolve, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { chmodExact, fsyncDir, removeStaleTempFiles, writeFileAtomic } from "./atomic.ts";
import { CoyoteError, ContractError } from "./errors.ts";
import { blobId, EMPTY_TREE, GitRepo, ZERO_OID, type GitIdentity, type TreeEntry } from "./git.ts";
import { acquireFileLock, type LockHolder } from "./lock.ts";
import { SecretRef, ServiceId } from "./primitives.ts";
import { AlarmLog } from "./alarm-log.ts";
import type { Alarm } from "./runtime.ts";
import { serviceNameIssues } from "./domains.ts";
import type { ServerSpec, ServiceSpec, Spec } from "./specs.ts";
import { formatPath, parseJson, parseSpec, serverOrDefaults, specId, specPath, validate } from "./validate.ts";
import { hasInlineCredentials } from "./credentials.ts";
import { migrateLegacyFields, pruneCredentials, rebindToCurrentCredentials, storeInlineCredentials, type SecretFolder } from "./spec-secrets.ts";
import { pruneEnvSecrets, rebindToCurrentEnv, storeInlineEnv } from "./env-secrets.ts";
import { pruneWebhookSecrets, rebindToCurrentWebhooks, storeInlineWebhooks } from "./webhook-secrets.ts";
import { redactSpecDiff, trimDiffContext } from "./redact-diff.ts";

// More lines than any spec file has: a diff with the whole file as context.
const WHOLE_FILE = 1_000_000;

/**
 * The state store over `COYOTE_STATE` (DESIGN.md, "On disk"): specs in a git repository where
 * every write is a commit (history, diff and rollback, seed 004), runtime files validated on every
 * read and write, secrets with mode 0600, all of it written atomically and safe against a crash
 * at any instruction.
 *
 * How a spec write stays consistent: under the store's lock, the new blob, trees and commit are
 * stored first (plumbing, no index); the commit's id goes to a small journal
 * (`specs/.git/coyote-pending`); then the spec file is replaced atomically (from this moment
 * readers see the change); last the branch moves by compare-and-swap. A crash before the file is
 * replaced changes nothing visible. A crash after it leaves the work tree ahead of the branch, and
 * the next writer (or `open`) finishes the journaled commit, keeping its author and message; a
 * work tree that matches no journal (edited by hand, or journal lost with the power) is committed
 * as it is, as `recover: commit a change interrupted by a crash`.
 */

/** Who made a change, as recorded in the specs history. */
export interface StoreAuthor {
  /** The person's or program's name. */
  readonly name: string;
  /** Their e-mail address. */
  readonly email: string;
}

/** Options of {@link StateStore.open}. */
export interface StateStoreOptions {
  /** The committer of every commit, and the author of init and recovery commits (default "Coyote <coyote@localhost>"). */
  readonly author?: StoreAuthor;
  /** How long a writer waits for another process's write lock before failing (default 10 s). */
  readonly lockTimeoutMs?: number;
  /** The git binary (default `git` on PATH). */
  readonly git?: string;
  /** Called whenever a recovery repaired something, on open or before a write, for the log. */
  readonly onRecovery?: (report: RecoveryReport) => void;
}

/** What a recovery found and repaired. Empty lists and no commit mean there was nothing to do. */
export interface RecoveryReport {
  /** The dead process whose write lock was taken over. */
  readonly tookOverLockOf: LockHolder | undefined;
  /** Git lock files left by a killed git process and removed (paths relative to the state root). */
  readonly gitLocksRemoved: string[];
  /** Temporary files of interrupted atomic writes that were removed (relative to the state root). */
  readonly tempFilesRemoved: string[];
  /** A journaled commit whose spec files were already (partly) written, finished with its own author and message. */
  completed: string | undefined;
  /** A `recover: ...` commit made of a work tree that matched no journal. */
  committed: string | undefined;
}

/** Options of {@link StateStore.applySpec}. */
export interface ApplySpecOptions {
  /** Who is making the change. */
  readonly author: StoreAuthor;
  /** The commit message (default `apply service <id> (generation <n>)`). */
  readonly message?: string;
  /** Where the document came from (an uploaded file name), named in a validation error instead of its path in the store. */
  readonly source?: string;
}

/** What {@link StateStore.applySpec} did. */
export interface ApplySpecResult {
  /** The spec's id: `server` or the service id. */
  readonly id: string;
  /** The spec's file relative to the state root, e.g. `specs/services/blog.json`. */
  readonly path: string;
  /** False when the spec was already exactly this (no write, no commit). */
  readonly changed: boolean;
  /** The spec's generation now. */
  readonly generation: number;
  /** The commit that holds this state of the spec (the current head when nothing changed). */
  readonly revision: string;
}

/** One commit of the specs history. */
export interface HistoryEntry {
  /** The commit id (40 hex digits). */
  readonly revision: string;
  /** Who made the change. */
  readonly author: StoreAuthor;
  /** When, ISO 8601 UTC. */
  readonly date: string;
  /** The commit message. */
  readonly message: string;
  /** The spec files it changed, relative to the state root (`specs/services/blog.json`). */
  readonly files: string[];
}

/** One entry of {@link StateStore.listSpecs}: a valid spec's summary, or why its file is bad. */
export type SpecListEntry = { id: string; kind: "Server" | "Service"; generation: number } | { id: string; error: ContractError };

/** One entry of {@link StateStore.readSpecs}: a valid spec, or why its file is bad. */
export type SpecReadEntry = { id: string; spec: Spec } | { id: string; error: ContractError };

/** What {@link StateStore.rollback} did. */
export interface RollbackResult {
  /** The new commit, or the current head when the specs already were as at that revision. */
  readonly revision: string;
  /** The spec files written, restored or removed, relative to the state root. */
  readonly changed: string[];
}

/** The folders of `COYOTE_STATE` and their modes (DESIGN.md, "On disk"). */
export const STATE_LAYOUT: ReadonlyArray<readonly [string, number]> = [
  ["specs", 0o755],
  ["specs/services", 0o755],
  ["status", 0o755],
  ["stats", 0o755],
  ["proxy", 0o755],
  ["proxy/certs", 0o700],
  ["activator", 0o755],
  ["inbox", 0o755],
  ["secrets", 0o700],
  ["run", 0o755],
  ["logs", 0o755],
];

/** The message of the first commit of a new specs repository. */
export const INIT_MESSAGE = "init: empty specs repository";
/** The message of a commit that records a work tree left ahead of the history by a crash. */
export const RECOVER_MESSAGE = "recover: commit a change interrupted by a crash";
/** The journal of the commit being written, relative to the state root. */
export const PENDING_JOURNAL = "specs/.git/coyote-pending";
/** The store's write lock, relative to the state root. */
export const STORE_LOCK = "run/specs.lock";

const DEFAULT_AUTHOR: StoreAuthor = { name: "Coyote", email: "coyote@localhost" };
const BRANCH = "refs/heads/main";
const SERVICE_FILE = /^services\/([a-z0-9-]+)\.json$/;
// A git lock file this old cannot belong to a git process of ours still finishing its work (they
// take milliseconds); one that is younger is waited for.
const GIT_LOCK_STALE_MS = 2_000;

// Writers of one state root in this process queue here, so that two StateStore objects on the
// same root never contend for the lock file against each other.
const queues = new Map<string, Promise<unknown>>();

function emptyReport(): RecoveryReport {
  return { tookOverLockOf: undefined, gitLocksRemoved: [], tempFilesRemoved: [], completed: undefined, committed: undefined };
}

function didSomething(report: RecoveryReport): boolean {
  return (
    report.tookOverLockOf !== undefined ||
    report.gitLocksRemoved.length > 0 ||
    report.tempFilesRemoved.length > 0 ||
    report.completed !== undefined ||
    report.committed !== undefined
  );
}

function ioError(context: string, cause: unknown): CoyoteError {
  if (cause instanceof CoyoteError) return cause;
  return new CoyoteError("STORE_ERR_IO", `${context}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

function isNotFound(cause: unknown): boolean {
  return (cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

/** The repository path of a spec: `server.json` or `services/<id>.json`. */
function repoPathOf(id: string): string {
  return specPath(id).slice("specs/".length);
}

/** The spec id a repository path holds, or undefined for a file that is not a spec of the layout. */
function idOfRepoPath(path: string): string | undefined {
  if (path === "server.json") return "server";
  const id = SERVICE_FILE.exec(path)?.[1];
  // services/server.json would collide with the server spec's id; it is not part of the layout.
  return id === undefined || id === "server" || !ServiceId.safeParse(id).success ? undefined : id;
}

function checkSpecId(id: string): void {
  if (id !== "server") validate(ServiceId, id, "spec id");
}

function checkAuthor(author: StoreAuthor, what: string): GitIdentity {
  const bad = (field: string, message: string) => new ContractError("SPEC_ERR_INVALID", what, [{ field, message }]);
  // Control characters and angle brackets would corrupt the commit's author line.
  const plain = (text: string) => stripControl(text, "") === text && !text.includes("<") && !text.includes(">");
  if (typeof author.name !== "string" || author.name.trim() === "" || author.name.length > 200 || !plain(author.name)) {
    throw bad("name", "an author name is 1-200 characters without control characters or < >");
  }
  if (typeof author.email !== "string" || !/^[^\s@<>]+@[^\s@<>]+$/.test(author.email) || author.email.length > 254 || !plain(author.email)) {
    throw bad("email", `not an e-mail address: ${JSON.stringify(author.email)}`);
  }
  return { name: author.name.trim(), email: author.email };
}

/** The text without control characters, except those in `keep`. */
function stripControl(text: string, keep: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const char = text.charAt(i);
    if ((code >= 0x20 && code !== 0x7f) || keep.includes(char)) out += char;
  }
  return out;
}

function cleanMessage(message: string | undefined, fallback: string): string {
  // NUL cannot be in a commit message; other control characters would garble `git log`.
  const text = stripControl(message ?? "", "\n\t").trim().slice(0, 10_000);
  return text === "" ? fallback : text;
}

/** JSON with object keys sorted, so that two documents compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

function withoutGeneration(spec: Spec): string {
  const { generation: _generation, ...rest } = spec;
  return canonical(rest);
}

function describe(id: string): string {
  return id === "server" ? "server" : `service ${id}`;
}

/** Parses and validates a spec file's text, and checks that it holds the spec its name says. */
function parseSpecText(text: string, file: string, expectedId: string): Spec {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const reason = text.trim() === "" ? "the file is empty" : `not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`;
    throw new ContractError("SPEC_ERR_PARSE", file, [{ field: "(root)", message: reason }], { cause });
  }
  const spec = parseSpec(value, file);
  if (specId(spec) !== expectedId) {
    const field = spec.kind === "Server" ? "kind" : "id";
    throw new ContractError("SPEC_ERR_INVALID", file, [{ field, message: `the file holds spec ${specId(spec)}, not ${expectedId} as its name says` }]);
  }
  return spec;
}

function serialise(spec: Spec): Buffer {
  return Buffer.from(`${JSON.stringify(spec, null, 2)}\n`, "utf8");
}

/** A spec with its generation set, keys in the schema's order (the order files are written in). */
function withGeneration(spec: Spec, generation: number, file: string): Spec {
  return parseSpec({ ...spec, generation }, file);
}

/** The generation a spec file's text claims, even when the file is otherwise invalid. */
function rawGeneration(text: string): number {
  try {
    const value = JSON.parse(text) as { generation?: unknown } | null;
    const generation = value?.generation;
    return typeof generation === "number" && Number.isInteger(generation) && generation > 0 ? generation : 0;
  } catch {
    return 0;
  }
}

interface HeadState {
  readonly commit: string;
  readonly files: ReadonlyMap<string, TreeEntry>;
}

/** A change to one spec file: new content, or `null` to remove it. */
interface Change {
  readonly path: string;
  readonly content: Buffer | null;
}

/**
 * The state store over one `COYOTE_STATE` folder. Readers need no lock (every file is replaced
 * atomically); writers of specs are serialised within the process by a queue and across
 * processes by the lock file `run/specs.lock`.
 */
export class StateStore {
  /** The state folder, absolute, symbolic links resolved. */
  readonly root: string;
  #recovery: RecoveryReport = emptyReport();
  readonly #git: GitRepo;
  readonly #committer: GitIdentity;
  readonly #lockTimeoutMs: number;
  readonly #onRecovery: ((report: RecoveryReport) => void) | undefined;
  /** Set when a write of this process failed half-way: the next write compares the files with HEAD. */
  #writeFailed = false;
  #head: HeadState | undefined;

  private constructor(root: string, options: StateStoreOptions) {
    this.root = root;
    this.#git = new GitRepo(join(root, "specs"), options.git);
    this.#committer = checkAuthor(options.author ?? DEFAULT_AUTHOR, "store author");
    this.#lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
    this.#onRecovery = options.onRecovery;
  }

  /**
   * Opens a state folder: creates the layout and the specs repository when missing, then takes the
   * write lock and recovers from whatever a crashed writer left behind.
   * @param root the `COYOTE_STATE` folder (created when missing).
   * @param options the committer, the lock timeout, the git binary.
   * @throws CoyoteError STORE_ERR_IO, STORE_ERR_GIT or STORE_ERR_LOCKED.
   */
  static async open(root: string, options: StateStoreOptions = {}): Promise<StateStore> {
    let real: string;
    try {
      await mkdir(root, { recursive: true });
      real = await realpath(root);
      // The state root holds secrets, the crm's database and the control sockets: only the
      // appliance's user may even list it.
      await chmodExact(real, 0o700);
      for (const [folder, mode] of STATE_LAYOUT) {
        await mkdir(join(real, folder), { recursive: true, mode });
        if (mode === 0o700) await chmodExact(join(real, folder), mode);
      }
    } catch (cause) {
      throw ioError(`opening state folder ${root}`, cause);
    }
    const store = new StateStore(real, options);
    store.#recovery = await store.#exclusive(async (report) => {
      await store.#migrate();
      return report;
    }, true);
    return store;
  }

  /**
   * Resolves a path relative to the state folder.
   * @param relative e.g. `status/blog.json`.
   * @throws CoyoteError STORE_ERR_IO for an absolute path or one that leaves the state folder.
   */
  path(relative: string): string {
    if (relative === "" || relative.includes("\0") || isAbsolute(relative)) {
      throw new CoyoteError("STORE_ERR_IO", `resolving ${JSON.stringify(relative)}: not a path relative to the state folder`);
    }
    const full = resolve(this.root, relative);
    if (full !== this.root && !full.startsWith(`${this.root}${sep}`)) {
      throw new CoyoteError("STORE_ERR_IO", `resolving ${JSON.stringify(relative)}: the path leaves the state folder`);
    }
    return full;
  }

  /** What the recovery during {@link StateStore.open} found and repaired. */
  get recovery(): RecoveryReport {
    return this.#recovery;
  }

  // ---------------------------------------------------------------------------------- specs

  /**
   * Validates a spec and stores it as a commit. The caller's `generation` is ignored: the store
   * counts it, +1 whenever anything else in the spec changes. Applying the spec it already has
   * changes nothing and makes no commit.
   * @param value the spec as parsed JSON.
   * @param options the author, the commit message, the source named in validation errors.
   * @throws ContractError (before anything is touched) when the spec is invalid; CoyoteError
   *   STORE_ERR_LOCKED, STORE_ERR_GIT or STORE_ERR_IO when it cannot be stored.
   */
  async applySpec(value: unknown, options: ApplySpecOptions): Promise<ApplySpecResult> {
    const file = options.source ?? guessSpecPath(value);
    const given = parseSpec(value, file);
    const author = checkAuthor(options.author, "author");
    const id = specId(given);
    const path = specPath(id);
    return this.#exclusive(async () => {
      if (given.kind === "Service" && given.owner !== undefined) await this.#checkClaimedNames(given, file);
      // Inline hashes go to secrets/ first: the spec that names them is written after.
      const parsed = given.kind === "Service" ? await storeInlineEnv(await storeInlineCredentials(given, this.#secrets), this.#secrets) : await storeInlineWebhooks(given, this.#secrets);
      const head = await this.#headState();
      let previous = 0;
      let same = false;
      const currentText = await this.#readText(path);
      if (currentText !== undefined) {
        try {
          const current = parseSpecText(currentText, path, id);
          previous = current.generation ?? 0;
          same = current.generation !== undefined && withoutGeneration(current) === withoutGeneration(parsed);
        } catch {
          // A bad file on disk is replaced by the good spec; its generation keeps counting.
          previous = rawGeneration(currentText);
        }
      }
      if (same) return { id, path, changed: false, generation: previous, revision: head.commit };
      const generation = previous + 1;
      const content = serialise(withGeneration(parsed, generation, file));
      const message = cleanMessage(options.message, `apply ${describe(id)} (generation ${generation})`);
      const revision = await this.#commitChanges(head, [{ path: repoPathOf(id), content }], author, message);
      if (parsed.kind === "Service") await this.#pruneSecrets(id, parsed);
      else await pruneWebhookSecrets(parsed, this.#secrets);
      return { id, path, changed: true, generation, revision };
    });
  }

  /**
   * Refuses a customer's service that claims a name no one may claim, or one that equals, holds or
   * lies in a name another service or the box itself has (domains.ts). A service without an owner
   * is the admin's own, whose names the admin answers for.
   * @throws ContractError SPEC_ERR_INVALID naming each refused field.
   */
  async #checkClaimedNames(spec: ServiceSpec, file: string): Promise<void> {
    const specs = (await this.readSpecs()).flatMap((entry) => ("spec" in entry ? [entry.spec] : []));
    const server = serverOrDefaults(specs.find((s): s is ServerSpec => s.kind === "Server"));
    const services = specs.filter((s): s is ServiceSpec => s.kind === "Service");
    const issues = serviceNameIssues(spec, server, services);
    if (issues.length > 0) throw new ContractError("SPEC_ERR_INVALID", file, issues.map((issue) => ({ field: formatPath(issue.path), message: issue.message })));
  }

  /**
   * Reads one spec, validated.
   * @param id `server` or a service id.
   * @returns the spec, or undefined when there is none.
   * @throws ContractError naming the file and field when the file is bad (or the id is malformed).
   */
  async getSpec(id: string): Promise<Spec | undefined> {
    checkSpecId(id);
    const text = await this.#readText(specPath(id));
    return text === undefined ? undefined : parseSpecText(text, specPath(id), id);
  }

  /**
   * Lists every spec: the server's first, then services by id. A bad file is listed with its
   * error and does not hide the good ones.
   */
  async listSpecs(): Promise<SpecListEntry[]> {
    return (await this.readSpecs()).map((entry) => ("error" in entry ? entry : { id: entry.id, kind: entry.spec.kind, generation: entry.spec.generation ?? 0 }));
  }

  /**
   * Reads every spec, in {@link StateStore.listSpecs}'s order, each file once: the parsed spec, or
   * why its file is bad.
   */
  async readSpecs(): Promise<SpecReadEntry[]> {
    const entries: SpecReadEntry[] = [];
    for (const path of await this.#listSpecFiles()) {
      const id = idOfRepoPath(path);
      if (id === undefined) continue;
      const text = await this.#readText(`specs/${path}`);
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

  /**
   * Removes a spec, as a commit.
   * @param id `server` or a service id.
   * @param options the author and the commit message (default `delete service <id>`).
   * @throws CoyoteError SPEC_ERR_NOT_FOUND when there is no such spec.
   */
  async deleteSpec(id: string, options: { author: StoreAuthor; message?: string }): Promise<{ id: string; path: string; revision: string }> {
    checkSpecId(id);
    const author = checkAuthor(options.author, "author");
    const path = specPath(id);
    return this.#exclusive(async () => {
      const head = await this.#headState();
      if ((await this.#readText(path)) === undefined) throw new CoyoteError("SPEC_ERR_NOT_FOUND", `deleting ${describe(id)}: no spec with that id`);
      const message = cleanMessage(options.message, `delete ${describe(id)}`);
      const revision = await this.#commitChanges(head, [{ path: repoPathOf(id), content: null }], author, message);
      if (id !== "server") await this.#pruneSecrets(id, undefined);
      else await pruneWebhookSecrets(undefined, this.#secrets);
      return { id, path, revision };
    });
  }

  // -------------------------------------------------------------------------------- history

  /** The current head of the specs history. */
  async head(): Promise<string> {
    const commit = await this.#git.readRef(BRANCH);
    if (commit === undefined) throw new CoyoteError("STORE_ERR_GIT", "reading the specs history: the repository has no main branch");
    return commit;
  }

  /**
   * The specs history, newest first.
   * @param id only the commits that touched this spec.
   * @param limit at most this many commits.
   */
  async history(id?: string, limit?: number): Promise<HistoryEntry[]> {
    if (id !== undefined) checkSpecId(id);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
      throw new CoyoteError("STORE_ERR_GIT", `reading the specs history: the limit must be a positive whole number, not ${limit}`);
    }
    const entries = await this.#git.log(await this.head(), {
      ...(limit === undefined ? {} : { limit }),
      ...(id === undefined ? {} : { path: repoPathOf(id) }),
    });
    return entries.map((entry) => ({ ...entry, files: entry.files.map((f) => `specs/${f}`) }));
  }

  /**
   * A unified diff of the specs (paths shown as `specs/...`), with the secret values that old
   * revisions may still hold (password hashes, environment values, webhook URLs) hidden. With two revisions: from `from` to
   * `to`. With one: the change that `from` itself made (against its parent, or against nothing
   * for the first commit), which is what a history view shows per entry; to compare a revision
   * with the current state, pass `await store.head()` as `to`.
   * @throws CoyoteError STORE_ERR_UNKNOWN_REVISION for a revision that is not hex or not in the history.
   */
  async diff(from: string, to?: string): Promise<string> {
    const head = await this.head();
    const a = await this.#resolve(from, head, "diffing");
    // Whole-file context first, so that every secret value is recognised by its enclosing field,
    // then back to git's three lines.
    const shown = (text: string) => trimDiffContext(redactSpecDiff(text));
    if (to !== undefined) return shown(await this.#git.diff(a, await this.#resolve(to, head, "diffing"), "specs/", WHOLE_FILE));
    const parent = (await this.#git.readCommit(a)).parents[0];
    return shown(await this.#git.diff(parent ?? EMPTY_TREE, a, "specs/", WHOLE_FILE));
  }

  /**
   * Makes the specs what they were at a revision, as a new commit (history is never rewritten):
   * specs added since are removed, removed ones are restored, changed ones get their old content
   * back. Every restored spec is validated first; when one is invalid nothing changes. A restored
   * spec that exists now keeps counting its generation (now + 1) instead of going back to the old
   * number, so that a status's `observedGeneration` never claims to have seen the restored spec.
   * @param revision a commit of the history, full or abbreviated hex.
   * @param options the author, and a message (default `rollback to <short rev>: <its message>`).
   * @throws CoyoteError STORE_ERR_UNKNOWN_REVISION for a revision that is not hex or not in the
   *   history; ContractError when a restored spec is invalid.
   */
  async rollback(revision: string, options: { author: StoreAuthor; message?: string }): Promise<RollbackResult> {
    const author = checkAuthor(options.author, "author");
    return this.#exclusive(async () => {
      const head = await this.#headState();
      const target = await this.#resolve(revision, head.commit, "rolling back");
      const targetFiles = new Map([...(await this.#git.lsTree(target))].filter(([path]) => idOfRepoPath(path) !== undefined));
      const blobs = await this.#git.readBlobs([...targetFiles.values()].map((e) => e.oid));
      const restored = new Map<string, { spec: Spec; bytes: Buffer }>();
      for (const [path, entry] of targetFiles) {
        const bytes = blobs.get(entry.oid) ?? Buffer.alloc(0);
        const id = idOfRepoPath(path) ?? "";
        const file = `specs/${path} at ${target.slice(0, 12)}`;
        const old = parseSpecText(bytes.toString("utf8"), file, id);
        // An old revision's inline hash, or a secret replaced since, is never brought back: each
        // account keeps its current credential.
        const spec = old.kind === "Service" ? await rebindToCurrentEnv(await rebindToCurrentCredentials(old, this.#secrets, file), this.#secrets, file) : await rebindToCurrentWebhooks(old, this.#secrets);
        restored.set(path, { spec, bytes: canonical(spec) === canonical(old) ? bytes : serialise(spec) });
      }
      const changes: Change[] = [];
      for (const [path, { spec, bytes }] of restored) {
        const id = idOfRepoPath(path) ?? "";
        const currentText = await this.#readText(`specs/${path}`);
        if (currentText === undefined) {
          changes.push({ path, content: bytes });
          continue;
        }
        let current: Spec | undefined;
        try {
          current = parseSpecText(currentText, `specs/${path}`, id);
        } catch {
          current = undefined;
        }
        if (current !== undefined && withoutGeneration(current) === withoutGeneration(spec)) continue;
        const generation = (current?.generation ?? rawGeneration(currentText)) + 1;
        changes.push({ path, content: serialise(withGeneration(spec, generation, `specs/${path}`)) });
      }
      for (const path of await this.#listSpecFiles()) {
        if (idOfRepoPath(path) !== undefined && !restored.has(path)) changes.push({ path, content: null });
      }
      if (changes.length === 0) return { revision: head.commit, changed: [] };
      const subject = (await this.#git.readCommit(target)).message.split("\n")[0] ?? "";
      const message = cleanMessage(options.message, `rollback to ${target.slice(0, 12)}: ${subject}`);
      const commit = await this.#commitChanges(head, changes, author, message);
      for (const change of changes) {
        const id = idOfRepoPath(change.path);
        if (change.content === null && id !== undefined && id !== "server") await this.#pruneSecrets(id, undefined);
      }
      return { revision: commit, changed: changes.map((c) => `specs/${c.path}`).sort() };
    });
  }

  // -------------------------------------------------------------------------- runtime files

  /**
   * Reads and validates a runtime file.
   * @param relative the file, relative to the state folder (e.g. `status/blog.json`).
   * @param schema the contract's schema (see CONTRACTS in validate.ts).
   * @returns the document, or undefined when the file does not exist.
   * @throws ContractError naming the file and field when it is bad.
   */
  async readJson<S extends z.ZodType>(relative: string, schema: S): Promise<z.output<S> | undefined> {
    const text = await this.#readText(relative);
    return text === undefined ? undefined : parseJson(schema, text, relative);
  }

  /**
   * Validates a document and replaces a runtime file with it atomically; an invalid document is
   * never written. Specs are not written this way (they go through {@link StateStore.applySpec}).
   * @throws ContractError when the document is invalid; CoyoteError STORE_ERR_IO when writing fails.
   */
  async writeJson<S extends z.ZodType>(relative: string, schema: S, value: z.input<S>): Promise<void> {
    const path = this.path(relative);
    if (path === join(this.root, "specs") || path.startsWith(join(this.root, "specs") + sep)) {
      throw new CoyoteError("STORE_ERR_IO", `writing ${relative}: specs are written with applySpec, which records them in the history`);
    }
    const document = validate(schema, value, relative);
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (cause) {
      throw ioError(`writing ${relative}`, cause);
    }
    const secret = path.startsWith(join(this.root, "secrets") + sep);
    await writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`, secret ? { mode: 0o600 } : {});
  }

  /**
   * Appends a validated alarm to `alarms.jsonl`, which is rotated past its limits keeping every
   * alarm still raised (see {@link AlarmLog}).
   * @throws ContractError when the alarm is invalid.
   */
  async appendAlarm(alarm: Alarm): Promise<void> {
    await this.#alarmLog().append(alarm);
  }

  /**
   * Reads the alarms of the current `alarms.jsonl`: every alarm still raised, and the recent
   * history. A torn or invalid line becomes a warning naming its line number; it never hides the
   * other alarms nor throws.
   */
  async readAlarms(): Promise<{ alarms: Alarm[]; warnings: string[] }> {
    return this.#alarmLog().read();
  }

  #alarmLog(): AlarmLog {
    return new AlarmLog(this.path("alarms.jsonl"), this.path("run/alarms.lock"));
  }

  /**
   * Stores a secret in `secrets/<name>` with mode 0600, atomically.
   * @throws ContractError when the name is not a valid secret name.
   */
  async writeSecret(name: string, data: string | Uint8Array): Promise<void> {
    validate(SecretRef, name, "secret name");
    await writeFileAtomic(this.path(`secrets/${name}`), data, { mode: 0o600 });
  }

  /**
   * Reads a secret.
   * @returns its bytes, or undefined when there is none.
   * @throws ContractError when the name is not a valid secret name.
   */
  async readSecret(name: string): Promise<Buffer | undefined> {
    validate(SecretRef, name, "secret name");
    try {
      return await readFile(this.path(`secrets/${name}`));
    } catch (cause) {
      if (isNotFound(cause)) return undefined;
      throw ioError(`reading secret ${name}`, cause);
    }
  }

  /** The names of every secret. */
  async listSecrets(): Promise<string[]> {
    try {
      return (await readdir(this.path("secrets"), { withFileTypes: true })).filter((e) => e.isFile() && SecretRef.safeParse(e.name).success).map((e) => e.name).sort();
    } catch (cause) {
      if (isNotFound(cause)) return [];
      throw ioError("listing secrets", cause);
    }
  }

  /** Removes a secret; no error when there is none. */
  async removeSecret(name: string): Promise<void> {
    validate(SecretRef, name, "secret name");
    await rm(this.path(`secrets/${name}`), { force: true }).catch((cause: unknown) => Promise.reject(ioError(`removing secret ${name}`, cause)));
  }

  /** Removes the credential and environment secrets of a service that its spec no longer names. */
  async #pruneSecrets(id: string, spec: ServiceSpec | undefined): Promise<void> {
    await pruneCredentials(id, spec, this.#secrets);
    await pruneEnvSecrets(id, spec, this.#secrets);
  }

  readonly #secrets: SecretFolder = {
    write: (name, data) => this.writeSecret(name, data),
    read: (name) => this.readSecret(name),
    list: () => this.listSecrets(),
    remove: (name) => this.removeSecret(name),
  };

  /**
   * Brings specs written before today's rules up to them, as one commit (under the lock, at
   * open): inline credentials move to secrets/, absolute static roots move inside the service's
   * site folder. A spec that is invalid either way is left for its reader to report.
   */
  async #migrate(): Promise<void> {
    const changes: Change[] = [];
    const what: string[] = [];
    for (const path of await this.#listSpecFiles()) {
      const id = idOfRepoPath(path);
      const text = await this.#readText(`specs/${path}`);
      if (id === undefined || text === undefined) continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        continue;
      }
      const legacy = migrateLegacyFields(value, this.root);
      let spec: Spec;
      try {
        spec = parseSpec(legacy.value, `specs/${path}`);
      } catch {
        continue;
      }
      if (spec.kind === "Server") {
        if (id !== "server" || spec.alarms.webhooks.length === 0) continue;
        const moved = await storeInlineWebhooks(spec, this.#secrets);
        changes.push({ path, content: serialise(withGeneration(moved, (moved.generation ?? 0) + 1, `specs/${path}`)) });
        what.push("server: alarm webhooks moved to secrets/");
        continue;
      }
      if (spec.id !== id) continue;
      const inline = hasInlineCredentials(spec);
      const backend = spec.web?.backend;
      const inlineEnv = (backend?.kind === "container" || backend?.kind === "process") && Object.keys(backend.env).length > 0;
      if (!inline && !inlineEnv && legacy.changes.length === 0) continue;
      const stored = await storeInlineEnv(await storeInlineCredentials(spec, this.#secrets), this.#secrets);
      // A new generation, so that every daemon applies the spec again in its new shape.
      changes.push({ path, content: serialise(withGeneration(stored, (stored.generation ?? 0) + 1, `specs/${path}`)) });
      what.push(`${describe(id)}: ${[...(inline ? ["credentials moved to secrets/"] : []), ...(inlineEnv ? ["environment values moved to secrets/"] : []), ...legacy.changes].join(", ")}`);
    }
    if (changes.length === 0) return;
    await this.#commitChanges(await this.#headState(), changes, this.#committer, `migrate: ${what.join("; ")}`);
  }

  // ------------------------------------------------------------------------------ internals

  async #readText(relative: string): Promise<string | undefined> {
    try {
      return await readFile(this.path(relative), "utf8");
    } catch (cause) {
      if (isNotFound(cause)) return undefined;
      throw ioError(`reading ${relative}`, cause);
    }
  }

  /** The spec files of the work tree (repository paths), server first, then services by id. */
  async #listSpecFiles(): Promise<string[]> {
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
  async #readWorkTree(): Promise<Map<string, Buffer>> {
    const files = new Map<string, Buffer>();
    for (const path of await this.#listSpecFiles()) {
      try {
        files.set(path, await readFile(join(this.root, "specs", path)));
      } catch (cause) {
        if (!isNotFound(cause)) throw ioError(`reading specs/${path}`, cause);
      }
    }
    return files;
  }

  async #headState(): Promise<HeadState> {
    const commit = await this.#git.readRef(BRANCH);
    if (commit === undefined) throw new CoyoteError("STORE_ERR_GIT", "reading the specs history: the repository has no main branch");
    if (this.#head?.commit !== commit) this.#head = { commit, files: await this.#git.lsTree(commit) };
    return this.#head;
  }

  async #resolve(revision: string, head: string, context: string): Promise<string> {
    if (!/^[0-9a-fA-F]{4,40}$/.test(revision)) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${JSON.stringify(revision)}: not a revision (4 to 40 hex digits)`);
    }
    const commit = await this.#git.resolveCommit(revision);
    if (commit === undefined) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${revision}: no such revision (or an ambiguous abbreviation) in the specs history`);
    }
    if (!(await this.#git.isAncestor(commit, head))) {
      throw new CoyoteError("STORE_ERR_UNKNOWN_REVISION", `${context} ${revision}: the commit is not part of the specs history`);
    }
    return commit;
  }

  /**
   * Runs a write with the store to itself: queued behind this process's other writes on the same
   * root, under the cross-process lock, after a recovery.
   */
  #exclusive<T>(fn: (recovery: RecoveryReport) => Promise<T>, opening = false): Promise<T> {
    const key = this.root;
    const run = (queues.get(key) ?? Promise.resolve()).then(async () => {
      const lock = await acquireFileLock(join(this.root, STORE_LOCK), { timeoutMs: this.#lockTimeoutMs, what: `the state store ${this.root}` });
      try {
        const report: RecoveryReport = { ...emptyReport(), tookOverLockOf: lock.tookOver };
        await this.#ensureRepository();
        await this.#recover(report, opening);
        if (didSomething(report)) this.#onRecovery?.(report);
        try {
          return await fn(report);
        } catch (error) {
          this.#writeFailed = true;
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
    if (this.#head !== undefined || (await this.#git.readRef(BRANCH)) !== undefined) return;
    await this.#git.init(this.#committer);
    const tree = await this.#git.writeTree(new Map());
    const commit = await this.#git.commitTree(tree, undefined, INIT_MESSAGE, this.#committer, this.#committer);
    await this.#git.updateRef(BRANCH, commit, ZERO_OID, INIT_MESSAGE);
  }

  /**
   * Stores a change as a commit and applies it to the work tree, in the crash-safe order: objects
   * and the journal first, then the files (now readers see it), then the branch.
   */
  async #commitChanges(head: HeadState, changes: readonly Change[], author: GitIdentity, message: string): Promise<string> {
    const files = new Map(head.files);
    for (const change of changes) {
      if (change.content === null) files.delete(change.path);
      else files.set(change.path, { mode: "100644", type: "blob", oid: await this.#git.writeBlob(change.content) });
    }
    const tree = await this.#git.writeTree(files);
    const commit = await this.#git.commitTree(tree, head.commit, message, author, this.#committer);
    // Only a process crash needs the journal, and the page cache survives one: no fsync. After a
    // power loss without it, the recovery commits the work tree under the recovery message.
    await writeFileAtomic(join(this.root, PENDING_JOURNAL), `${commit}\n`, { durable: false });
    await this.#applyToWorkTree(changes);
    await this.#moveBranch(commit, head.commit, message);
    this.#head = { commit, files };
    // The journal only matters while a write is under way; its absence tells the next writer that
    // no comparison of the work tree with HEAD is needed.
    await rm(join(this.root, PENDING_JOURNAL), { force: true });
    return commit;
  }

  async #applyToWorkTree(changes: readonly Change[]): Promise<void> {
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

  async #moveBranch(commit: string, from: string, message: string): Promise<void> {
    const outcome = await this.#git.updateRef(BRANCH, commit, from, message);
    if (outcome === "moved") {
      // Nobody else moves the branch while we hold the lock; if it happens anyway, the work tree
      // (already written) is the truth and the next recovery records it.
      this.#head = undefined;
      throw new CoyoteError("STORE_ERR_GIT", `committing "${message.split("\n")[0] ?? ""}": the specs branch moved during the write`);
    }
  }

  /** Removes git lock files that a killed git process left, waiting for young ones to go away. */
  async #clearGitLocks(report: RecoveryReport): Promise<void> {
    const gitDir = this.#git.gitDir;
    const candidates = ["index.lock", "HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock"].map((name) => join(gitDir, name));
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
          report.gitLocksRemoved.push(relativePath(this.root, path));
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
  async #recover(report: RecoveryReport, opening: boolean): Promise<void> {
    await this.#clearGitLocks(report);
    // Spec files and the journal are only written under the lock we hold: every temporary file
    // there is left over.
    for (const dir of [join(this.root, "specs"), join(this.root, "specs", "services"), this.#git.gitDir]) {
      for (const path of await removeStaleTempFiles(dir, { all: true })) report.tempFilesRemoved.push(relativePath(this.root, path));
    }
    if (opening) {
      // The other folders are written without the lock: only dead writers' temporary files go.
      for (const folder of ["", ...STATE_LAYOUT.map(([f]) => f).filter((f) => !f.startsWith("specs"))]) {
        for (const path of await removeStaleTempFiles(join(this.root, folder))) report.tempFilesRemoved.push(relativePath(this.root, path));
      }
    }
    // Comparing every spec file with HEAD costs a read of every spec, so it is done only when a
    // write may have been interrupted: at open, after taking over a dead holder's lock, when the
    // pending-commit journal or a crashed writer's leftovers are there, or after a write of this
    // process failed. A clean handover between writers needs no comparison.
    const suspect = opening || report.tookOverLockOf !== undefined || report.gitLocksRemoved.length > 0 || report.tempFilesRemoved.length > 0
      || this.#writeFailed || (await readFile(join(this.root, PENDING_JOURNAL), "utf8").then(() => true, () => false));
    if (!suspect) return;
    this.#writeFailed = false;
    for (let attempt = 0; attempt < 20; attempt++) {
      const head = await this.#headState();
      const work = await this.#readWorkTree();
      const headSpecs = new Map([...head.files].filter(([path]) => idOfRepoPath(path) !== undefined));
      const differing = [...new Set([...headSpecs.keys(), ...work.keys()])].filter((path) => {
        const content = work.get(path);
        return (content === undefined ? undefined : blobId(content)) !== headSpecs.get(path)?.oid;
      });
      if (differing.length === 0) return;
      if (await this.#finishPending(head, work, report)) continue;
      const changes = differing.map((path) => ({ path, content: work.get(path) ?? null }));
      const files = new Map(head.files);
      for (const change of changes) {
        if (change.content === null) files.delete(change.path);
        else files.set(change.path, { mode: "100644", type: "blob", oid: await this.#git.writeBlob(change.content) });
      }
      const tree = await this.#git.writeTree(files);
      const commit = await this.#git.commitTree(tree, head.commit, RECOVER_MESSAGE, this.#committer, this.#committer);
      if ((await this.#git.updateRef(BRANCH, commit, head.commit, RECOVER_MESSAGE)) === "updated") {
        this.#head = { commit, files };
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
  async #finishPending(head: HeadState, work: ReadonlyMap<string, Buffer>, report: RecoveryReport): Promise<boolean> {
    const text = await readFile(join(this.root, PENDING_JOURNAL), "utf8").catch(() => "");
    const pending = text.trim();
    if (!/^[0-9a-f]{40}$/.test(pending) || !(await this.#git.hasObject(pending, "commit"))) return false;
    const info = await this.#git.readCommit(pending);
    if (info.parents.length !== 1 || info.parents[0] !== head.commit) return false;
    const targetFiles = await this.#git.lsTree(pending);
    const target = new Map([...targetFiles].filter(([path]) => idOfRepoPath(path) !== undefined));
    const paths = new Set([...head.files.keys(), ...work.keys(), ...target.keys()].filter((path) => idOfRepoPath(path) !== undefined));
    const todo: Change[] = [];
    const blobs = await this.#git.readBlobs([...target.values()].map((e) => e.oid));
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
    await this.#applyToWorkTree(todo);
    const firstLine = info.message.split("\n")[0] ?? "";
    if ((await this.#git.updateRef(BRANCH, pending, head.commit, firstLine)) === "moved") return false;
    this.#head = { commit: pending, files: targetFiles };
    report.completed = pending;
    return true;
  }
}

/** The path a spec would be stored at, for validation errors before its id is known to be valid. */
function guessSpecPath(value: unknown): string {
  if (typeof value === "object" && value !== null) {
    const { kind, id } = value as { kind?: unknown; id?: unknown };
    if (kind === "Server") return specPath("server");
    if (typeof id === "string" && ServiceId.safeParse(id).success) return specPath(id);
  }
  return "specs/services/<id>.json";
}
