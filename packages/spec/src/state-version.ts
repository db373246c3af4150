/**
 * The schema version of a state folder: `state-version.json` at its top names the version of the
 * folder's layout and contracts, the build that wrote it and when. {@link StateStore.open} reads
 * it before it changes anything: a folder from a newer Coyote is refused untouched; an older one is
 * brought up to date, under the store's write lock, through the ordered MIGRATIONS
 * (`migrations/`), the version file moving on after each migration has finished, so that one
 * killed half-way is run again to completion at the next open.
 *
 * A folder without the file is either fresh (no specs repository yet: it gets today's version) or
 * was written before the file existed (version 1).
 */
import { readFileSync } from "node:fs";
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./atomic.ts";
import { CoyoteError } from "./errors.ts";
import { MIGRATIONS, type MigrationContext, type StateMigration } from "./migrations/index.ts";
import { Timestamp } from "./primitives.ts";
import { isNotFound } from "./spec-files.ts";

export type { MigrationContext, StateMigration } from "./migrations/index.ts";
export { MIGRATIONS } from "./migrations/index.ts";

/** The version file, relative to the state folder. */
export const STATE_VERSION_FILE = "state-version.json";

/** The largest version file read; anything bigger is not one. */
const MAX_VERSION_FILE_BYTES = 64 * 1024;

/** `state-version.json`: the state folder's schema version, who wrote it and when. */
export const StateVersionFile = z.strictObject({
  schemaVersion: z.int().min(1).max(1_000_000),
  writtenBy: z.string().min(1).max(200),
  migratedAt: Timestamp,
});
/** The content of `state-version.json`. */
export type StateVersionFile = z.infer<typeof StateVersionFile>;

/** One migration a state folder went through. */
export interface MigrationRun {
  /** The version before. */
  readonly from: number;
  /** The version after. */
  readonly to: number;
  /** What the migration changed. */
  readonly description: string;
}

/**
 * Checks that the migrations form one chain 1 → 2 → … and returns the last version.
 * @throws Error when the list is out of order (a bug of the build, found at load time).
 */
export function lastVersionOf(migrations: readonly StateMigration[]): number {
  let version = 1;
  for (const migration of migrations) {
    if (migration.from !== version || migration.to !== version + 1) {
      throw new Error(`state migrations: expected a migration from ${version} to ${version + 1}, found ${migration.from} → ${migration.to} (${migration.description})`);
    }
    version = migration.to;
  }
  return version;
}

/** The state version this build writes and knows how to read. */
export const STATE_VERSION = lastVersionOf(MIGRATIONS);

/**
 * A state folder written by a newer Coyote than this build. Nothing in the folder was changed.
 */
export class StateTooNewError extends CoyoteError {
  /** The version the folder is at. */
  readonly found: number;
  /** The newest version this build knows. */
  readonly known: number;

  /**
   * @param root the state folder.
   * @param found the version its file names.
   * @param known the newest version this build knows.
   * @param writtenBy the build the file names, if any.
   */
  constructor(root: string, found: number, known: number, writtenBy?: string) {
    const by = writtenBy === undefined ? "" : ` by ${writtenBy}`;
    super(
      "STORE_ERR_STATE_TOO_NEW",
      `opening state folder ${root}: this state folder was written by a newer Coyote (state version ${found}${by}; this build knows up to ${known}): update Coyote, or go back to the release that wrote it with \`coyote update --rollback\``,
    );
    this.name = "StateTooNewError";
    this.found = found;
    this.known = known;
  }
}

let defaultWriter: string | undefined;

/** The build named in a version file when the caller names none: `coyote <version>`. */
export function defaultWrittenBy(): string {
  if (defaultWriter === undefined) {
    let version = "";
    try {
      const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
      if (typeof pkg.version === "string") version = ` ${pkg.version}`;
    } catch {
      // No package.json beside the sources: the name alone.
    }
    defaultWriter = `coyote${version}`;
  }
  return defaultWriter;
}

/**
 * Reads a state folder's version file, changing nothing.
 * @param root the state folder.
 * @returns the file's content, or undefined when there is none.
 * @throws StateTooNewError when the file names a version above `known`, whatever else it holds
 *   (a newer build may have added fields); CoyoteError STORE_ERR_STATE_VERSION when it is not a
 *   version file.
 */
export async function readStateVersion(root: string, known = STATE_VERSION): Promise<StateVersionFile | undefined> {
  const file = join(root, STATE_VERSION_FILE);
  let bytes: Buffer;
  try {
    const found = await lstat(file);
    if (!found.isFile()) throw new CoyoteError("STORE_ERR_STATE_VERSION", `reading ${file}: not a regular file; remove it if the state folder is from before versioning`);
    if (found.size > MAX_VERSION_FILE_BYTES) throw new CoyoteError("STORE_ERR_STATE_VERSION", `reading ${file}: ${found.size} bytes, more than a version file's ${MAX_VERSION_FILE_BYTES}`);
    bytes = await readFile(file);
  } catch (cause) {
    if (isNotFound(cause)) return undefined;
    if (cause instanceof CoyoteError) throw cause;
    throw new CoyoteError("STORE_ERR_STATE_VERSION", `reading ${file}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (cause) {
    throw new CoyoteError("STORE_ERR_STATE_VERSION", `reading ${file}: not valid JSON (${cause instanceof Error ? cause.message : String(cause)}); it should be {"schemaVersion": N, "writtenBy": "...", "migratedAt": "..."}`, { cause });
  }
  const claimed = (value as { schemaVersion?: unknown } | null)?.schemaVersion;
  if (typeof claimed === "number" && Number.isInteger(claimed) && claimed > known) {
    const by = (value as { writtenBy?: unknown }).writtenBy;
    throw new StateTooNewError(root, claimed, known, typeof by === "string" ? by.slice(0, 200) : undefined);
  }
  const parsed = StateVersionFile.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`).join("; ");
    throw new CoyoteError("STORE_ERR_STATE_VERSION", `reading ${file}: ${issues}`);
  }
  return parsed.data;
}

/** Writes the version file atomically. */
export async function writeStateVersion(root: string, version: number, writtenBy: string): Promise<void> {
  const document = StateVersionFile.parse({ schemaVersion: version, writtenBy: writtenBy.slice(0, 200) || defaultWrittenBy(), migratedAt: new Date().toISOString() });
  await writeFileAtomic(join(root, STATE_VERSION_FILE), `${JSON.stringify(document, null, 2)}\n`, { mode: 0o644 });
}

/** Options of {@link migrateState}. */
export interface MigrateStateOptions {
  /** The build named in the version file (default `coyote <version>`). */
  readonly writtenBy?: string;
  /** Whether the folder had no specs repository before this open: it then gets today's version at once. */
  readonly fresh?: boolean;
  /** The migrations (default MIGRATIONS); tests give their own. */
  readonly migrations?: readonly StateMigration[];
}

/**
 * Brings a state folder to this build's version. Call it with the store's write lock held.
 * @returns the migrations run, oldest first (empty when the folder was up to date).
 * @throws StateTooNewError for a newer folder (nothing changed); CoyoteError
 *   STORE_ERR_STATE_VERSION for a bad version file; CoyoteError STORE_ERR_MIGRATION naming the
 *   migration that failed (the version file still names the version before it).
 */
export async function migrateState(context: MigrationContext, options: MigrateStateOptions = {}): Promise<MigrationRun[]> {
  const migrations = options.migrations ?? MIGRATIONS;
  const known = lastVersionOf(migrations);
  const writtenBy = options.writtenBy ?? defaultWrittenBy();
  const found = await readStateVersion(context.root, known);
  if (found === undefined && options.fresh === true) {
    await writeStateVersion(context.root, known, writtenBy);
    return [];
  }
  let version = found?.schemaVersion ?? 1;
  const runs: MigrationRun[] = [];
  for (const migration of migrations) {
    if (migration.from !== version) continue;
    try {
      await migration.up(context);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      throw new CoyoteError("STORE_ERR_MIGRATION", `migrating state folder ${context.root} from version ${migration.from} to ${migration.to} (${migration.description}): ${message}; the folder stays at version ${migration.from} and the migration runs again at the next open`, { cause });
    }
    // Only now: a migration killed before this line runs again, from the start, next time.
    await writeStateVersion(context.root, migration.to, writtenBy);
    runs.push({ from: migration.from, to: migration.to, description: migration.description });
    version = migration.to;
  }
  if (found === undefined && runs.length === 0) await writeStateVersion(context.root, version, writtenBy);
  return runs;
}

/** Whether a state folder has a specs repository yet (a folder without one is fresh). */
export async function hasSpecsRepository(root: string): Promise<boolean> {
  try {
    await lstat(join(root, "specs", ".git"));
    return true;
  } catch (cause) {
    // Whatever else went wrong, the folder is not taken for fresh: its migrations run.
    return !(isNotFound(cause) || (cause as NodeJS.ErrnoException).code === "ENOTDIR");
  }
}
