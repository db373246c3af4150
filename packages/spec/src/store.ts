import { mkdir } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { z } from "zod";
import { writeFileAtomic } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";
import { AlarmLog } from "./alarm-log.ts";
import type { Alarm } from "./runtime.ts";
import type { Spec } from "./specs.ts";
import { parseJson, parseSpec, specId, specPath, validate } from "./validate.ts";
import { pruneWebhookSecrets } from "./webhook-secrets.ts";
import { checkAuthor, checkSpecId, cleanMessage, DEFAULT_AUTHOR, describe, guessSpecPath, idOfRepoPath, ioError, parseSpecText, prepareStateFolder, rawGeneration, repoPathOf, serialise, statePath, withGeneration, withoutGeneration } from "./spec-files.ts";
import { SpecRepo } from "./spec-repo.ts";
import { emptyReport } from "./store-recovery.ts";
import { DEFAULT_MAINTENANCE } from "./store-maintenance.ts";
import { checkClaimedNames } from "./store-claims.ts";
import { migrateSpecs } from "./store-migrate.ts";
import { hasSpecsRepository, migrateState, readStateVersion, type MigrateStateOptions, type MigrationRun } from "./state-version.ts";
import { pruneServiceSecrets, secretFolder, storeInlineSecrets, type StoreSecretFolder } from "./store-secrets.ts";
import { readHistory, rollbackChanges, specDiff } from "./store-history.ts";
import type { ApplySpecOptions, ApplySpecResult, HistoryEntry, RecoveryReport, RollbackResult, SpecListEntry, SpecReadEntry, StateStoreOptions, StoreAuthor } from "./store-types.ts";

export * from "./store-types.ts";
export * from "./state-version.ts";
export { DEFAULT_MAINTENANCE, type MaintenanceOptions, type MaintenanceReport } from "./store-maintenance.ts";

/**
 * The state store over `COYOTE_STATE` (docs/ARCHITECTURE.md, "On disk"): specs in a git repository where
 * every write is a commit (history, diff and rollback), runtime files validated on every
 * read and write, secrets with mode 0600, all of it written atomically and safe against a crash
 * at any instruction.
 *
 * The store's parts: `spec-repo.ts` (the specs repository, its lock and crash-safe commits),
 * `store-recovery.ts` (repairs after a crash), `store-history.ts` (log, diff, rollback plan),
 * `store-secrets.ts` (the secrets/ folder and the hooks that keep secret values out of specs),
 * `store-migrate.ts` and `state-version.ts` with `migrations/` (the state folder's version and
 * its migrations), `store-claims.ts` (domain claims), `store-maintenance.ts` (`git gc` of
 * the history), `spec-files.ts` (pure helpers), and the git layer: `git.ts` (the repository),
 * `git-objects.ts` and `git-refs.ts` (objects and branch moves written in-process).
 */

/**
 * The state store over one `COYOTE_STATE` folder. Readers need no lock (every file is replaced
 * atomically); writers of specs are serialised within the process by a queue and across
 * processes by the lock file `run/specs.lock`.
 */
export class StateStore {
  /** The state folder, absolute, symbolic links resolved. */
  readonly root: string;
  #recovery: RecoveryReport = emptyReport();
  #migrations: MigrationRun[] = [];
  readonly #repo: SpecRepo;
  readonly #secrets: StoreSecretFolder;

  private constructor(root: string, options: StateStoreOptions) {
    this.root = root;
    this.#repo = new SpecRepo(root, {
      committer: checkAuthor(options.author ?? DEFAULT_AUTHOR, "store author"),
      lockTimeoutMs: options.lockTimeoutMs ?? 10_000,
      git: options.git,
      onRecovery: options.onRecovery,
      maintenance: { ...DEFAULT_MAINTENANCE, ...options.maintenance },
      onMaintenance: options.onMaintenance,
    });
    this.#secrets = secretFolder(root);
  }

  /**
   * Opens a state folder: refuses one written by a newer Coyote before changing anything, creates
   * the layout and the specs repository when missing, then takes the write lock, recovers from
   * whatever a crashed writer left behind, and brings the folder to this build's state version
   * (state-version.ts). Specs written into the work tree by hand in an older shape are brought to
   * today's rules at every open.
   * @param root the `COYOTE_STATE` folder (created when missing).
   * @param options the committer, the lock timeout, the git binary, the build named in the version file.
   * @throws StateTooNewError (nothing changed); CoyoteError STORE_ERR_IO, STORE_ERR_GIT,
   *   STORE_ERR_LOCKED, STORE_ERR_STATE_VERSION or STORE_ERR_MIGRATION.
   */
  static async open(root: string, options: StateStoreOptions & Pick<MigrateStateOptions, "writtenBy"> = {}): Promise<StateStore> {
    await readStateVersion(root);
    const fresh = !(await hasSpecsRepository(root));
    const real = await prepareStateFolder(root);
    const store = new StateStore(real, options);
    store.#recovery = await store.#repo.exclusive(async (report) => {
      store.#migrations = await migrateState({ root: real, repo: store.#repo, secrets: store.#secrets }, { writtenBy: options.writtenBy, fresh });
      await migrateSpecs(store.#repo, store.#secrets);
      return report;
    }, true);
    store.#repo.maintenance.atOpen();
    return store;
  }

  /**
   * Resolves a path relative to the state folder.
   * @param relative e.g. `status/blog.json`.
   * @throws CoyoteError STORE_ERR_IO for an absolute path or one that leaves the state folder.
   */
  path(relative: string): string {
    return statePath(this.root, relative);
  }

  /** The state migrations {@link StateStore.open} ran, oldest first (empty when the folder was up to date). */
  get migrations(): readonly MigrationRun[] {
    return this.#migrations;
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
    return this.#repo.exclusive(async () => {
      if (given.kind === "Service" && given.owner !== undefined) checkClaimedNames(given, file, await this.readSpecs());
      // Inline hashes go to secrets/ first: the spec that names them is written after.
      const parsed = await storeInlineSecrets(given, this.#secrets);
      const head = await this.#repo.headState();
      let previous = 0;
      let same = false;
      const currentText = await this.#repo.readText(path);
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
      const revision = await this.#repo.commitChanges(head, [{ path: repoPathOf(id), content }], author, message);
      if (parsed.kind === "Service") await pruneServiceSecrets(id, parsed, this.#secrets);
      else await pruneWebhookSecrets(parsed, this.#secrets);
      return { id, path, changed: true, generation, revision };
    });
  }

  /**
   * Reads one spec, validated.
   * @param id `server` or a service id.
   * @returns the spec, or undefined when there is none.
   * @throws ContractError naming the file and field when the file is bad (or the id is malformed).
   */
  async getSpec(id: string): Promise<Spec | undefined> {
    checkSpecId(id);
    const text = await this.#repo.readText(specPath(id));
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
    return this.#repo.readSpecs();
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
    return this.#repo.exclusive(async () => {
      const head = await this.#repo.headState();
      if ((await this.#repo.readText(path)) === undefined) throw new CoyoteError("SPEC_ERR_NOT_FOUND", `deleting ${describe(id)}: no spec with that id`);
      const message = cleanMessage(options.message, `delete ${describe(id)}`);
      const revision = await this.#repo.commitChanges(head, [{ path: repoPathOf(id), content: null }], author, message);
      if (id !== "server") await pruneServiceSecrets(id, undefined, this.#secrets);
      else await pruneWebhookSecrets(undefined, this.#secrets);
      return { id, path, revision };
    });
  }

  // -------------------------------------------------------------------------------- history

  /** The current head of the specs history. */
  async head(): Promise<string> {
    return this.#repo.head();
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
    return readHistory(this.#repo, await this.head(), id, limit);
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
    const a = await this.#repo.resolve(from, head, "diffing");
    const b = to === undefined ? undefined : await this.#repo.resolve(to, head, "diffing");
    return specDiff(this.#repo, a, b);
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
    return this.#repo.exclusive(async () => {
      const head = await this.#repo.headState();
      const target = await this.#repo.resolve(revision, head.commit, "rolling back");
      const changes = await rollbackChanges(this.#repo, this.#secrets, target);
      if (changes.length === 0) return { revision: head.commit, changed: [] };
      const subject = (await this.#repo.git.readCommit(target)).message.split("\n")[0] ?? "";
      const message = cleanMessage(options.message, `rollback to ${target.slice(0, 12)}: ${subject}`);
      const commit = await this.#repo.commitChanges(head, changes, author, message);
      for (const change of changes) {
        const id = idOfRepoPath(change.path);
        if (change.content === null && id !== undefined && id !== "server") await pruneServiceSecrets(id, undefined, this.#secrets);
      }
      return { revision: commit, changed: changes.map((c) => `specs/${c.path}`).sort() };
    });
  }

  /**
   * Packs the specs history now (a full `git gc`, refs left loose) and waits for it; otherwise
   * this happens by itself once enough commits piled up and the store is quiet. The run is
   * reported to `onMaintenance`.
   */
  async compactHistory(): Promise<void> {
    await this.#repo.maintenance.run(true);
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
    const text = await this.#repo.readText(relative);
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
    await this.#secrets.write(name, data);
  }

  /**
   * Reads a secret.
   * @returns its bytes, or undefined when there is none.
   * @throws ContractError when the name is not a valid secret name.
   */
  async readSecret(name: string): Promise<Buffer | undefined> {
    return this.#secrets.read(name);
  }

  /** The names of every secret. */
  async listSecrets(): Promise<string[]> {
    return this.#secrets.list();
  }

  /** Removes a secret; no error when there is none. */
  async removeSecret(name: string): Promise<void> {
    await this.#secrets.remove(name);
  }
}
