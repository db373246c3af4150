/**
 * The migrations of the state folder, in order. A released migration is never edited: a change is
 * a new entry at the end, whose `from` is the last entry's `to`. The newest `to` is the state
 * version this build writes (STATE_VERSION in state-version.ts).
 */
import type { StateMigration } from "./types.ts";
import { secretsOutOfSpecs } from "./v1-secrets-out-of-specs.ts";
import { dovecotUsersMoved } from "./v2-dovecot-users-moved.ts";

export type { MigrationContext, StateMigration } from "./types.ts";

/** Every migration, oldest first: version 1 (a folder without a version file) up to today's. */
export const MIGRATIONS: readonly StateMigration[] = [secretsOutOfSpecs, dovecotUsersMoved];
