/** The shape of one migration of the state folder (see state-version.ts). */
import type { SpecRepo } from "../spec-repo.ts";
import type { SecretFolder } from "../spec-secrets.ts";

/** What a migration works on: the state folder, its specs repository and its secrets. */
export interface MigrationContext {
  /** The state folder, absolute, symbolic links resolved. */
  readonly root: string;
  /** The specs repository; a migration that changes specs commits through it. */
  readonly repo: SpecRepo;
  /** The `secrets/` folder. */
  readonly secrets: SecretFolder;
}

/**
 * One step of the state folder's schema, from version `from` to `from + 1`. `up` runs under the
 * store's write lock and must be idempotent: a run killed half-way is run again, from the start,
 * at the next open, and must then finish what the first run began (the version file moves on
 * only once `up` has returned).
 */
export interface StateMigration {
  /** The version the state folder must be at. */
  readonly from: number;
  /** The version it is at afterwards: always `from + 1`. */
  readonly to: number;
  /** What it changes, in a lowercase phrase (shown in logs and by `coyote update`). */
  readonly description: string;
  /** Brings the state folder from `from` to `to`; safe to run again after a partial run. */
  up(context: MigrationContext): Promise<void>;
}
