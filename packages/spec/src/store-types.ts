/** The public shapes of the state store: its options, results and the layout of `COYOTE_STATE`. */

import type { ContractError } from "./errors.ts";
import type { LockHolder } from "./lock.ts";
import type { Spec } from "./specs.ts";
import type { MaintenanceOptions, MaintenanceReport } from "./store-maintenance.ts";

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
  /** When the history is packed (`git gc --auto`); see DEFAULT_MAINTENANCE. */
  readonly maintenance?: Partial<MaintenanceOptions>;
  /** Called after every housekeeping run of the history, for the log. */
  readonly onMaintenance?: (report: MaintenanceReport) => void;
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

/** The folders of `COYOTE_STATE` and their modes (docs/ARCHITECTURE.md, "On disk"). */
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
