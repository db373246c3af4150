/**
 * The copy of what state migrations change, taken before an update migrates and put back when the
 * update is rolled back: the specs folder (with its history) and `state-version.json`. Mailboxes,
 * secrets, certificates, the crm's database and the runtime files are not in it (see
 * docs/PRODUCTION.md, "Upgrades and rollback"). Copies are made with `cp -a`, which keeps owners
 * and modes, under the store's write lock, so that no spec write is half in the copy.
 */
import { execFile } from "node:child_process";
import { lstat, mkdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { acquireFileLock, readStateVersion, STATE_VERSION_FILE, STORE_LOCK, writeFileAtomic } from "@coyote/spec";
import { CliError } from "../errors.ts";

const execFileAsync = promisify(execFile);

/** The folder of the copy, relative to the state folder. */
export const BACKUP_DIR = "update/backup";
/** Where the specs a restore replaced are kept, relative to the state folder. */
export const REPLACED_DIR = "update/replaced";

/** What a copy says about itself (`update/backup/backup.json`, written last). */
export interface StateBackup {
  /** The release that ran when it was taken, if any. */
  readonly fromRelease: string | undefined;
  /** The release being updated to. */
  readonly toRelease: string;
  /** The state version before the migrations (undefined: no version file). */
  readonly stateVersion: number | undefined;
  /** When it was taken, ISO 8601 UTC. */
  readonly takenAt: string;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** `cp -a`, at most ten minutes. */
async function copyTree(from: string, to: string): Promise<void> {
  try {
    await execFileAsync("cp", ["-a", "--", from, to], { timeout: 600_000, maxBuffer: 1024 * 1024 });
  } catch (cause) {
    throw new CliError(`copying ${from} to ${to}: ${(cause as { stderr?: string }).stderr?.trim() || (cause instanceof Error ? cause.message : String(cause))}`, undefined, { cause });
  }
}

/** Runs `fn` with the state store's write lock held. */
async function locked<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireFileLock(join(stateDir, STORE_LOCK), { timeoutMs: 60_000, what: `the state store ${stateDir}` });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * Copies the specs folder and the version file into `update/backup/`, replacing the copy of an
 * earlier update once the new one is complete.
 */
export async function takeStateBackup(stateDir: string, about: Omit<StateBackup, "takenAt" | "stateVersion">): Promise<StateBackup> {
  const partial = join(stateDir, `${BACKUP_DIR}.partial`);
  const backup = join(stateDir, BACKUP_DIR);
  return locked(stateDir, async () => {
    const version = (await readStateVersion(stateDir, Number.MAX_SAFE_INTEGER))?.schemaVersion;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true, mode: 0o700 });
    if (await exists(join(stateDir, "specs"))) await copyTree(join(stateDir, "specs"), join(partial, "specs"));
    if (await exists(join(stateDir, STATE_VERSION_FILE))) await copyTree(join(stateDir, STATE_VERSION_FILE), join(partial, STATE_VERSION_FILE));
    const meta: StateBackup = { ...about, stateVersion: version, takenAt: new Date().toISOString() };
    await writeFileAtomic(join(partial, "backup.json"), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
    await rm(backup, { recursive: true, force: true });
    await rename(partial, backup);
    return meta;
  });
}

/** The copy's description, or undefined when there is no complete copy. */
export async function readStateBackup(stateDir: string): Promise<StateBackup | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(stateDir, BACKUP_DIR, "backup.json"), "utf8")) as Partial<StateBackup>;
    if (typeof meta.toRelease !== "string" || typeof meta.takenAt !== "string") return undefined;
    return { fromRelease: typeof meta.fromRelease === "string" ? meta.fromRelease : undefined, toRelease: meta.toRelease, stateVersion: typeof meta.stateVersion === "number" ? meta.stateVersion : undefined, takenAt: meta.takenAt };
  } catch {
    return undefined;
  }
}

/** The state folder's version now (undefined: no version file), whatever build wrote it. */
export async function currentStateVersion(stateDir: string): Promise<number | undefined> {
  return (await readStateVersion(stateDir, Number.MAX_SAFE_INTEGER))?.schemaVersion;
}

/**
 * Puts the copy back: the specs folder there now moves to `update/replaced/<time>/specs` (kept,
 * never deleted), the copy's specs take its place, and the version file becomes the copy's (or is
 * removed when the copy had none). The copy is used up.
 * @returns where the replaced specs were kept.
 * @throws CliError when there is no complete copy.
 */
export async function restoreStateBackup(stateDir: string): Promise<string> {
  const backup = join(stateDir, BACKUP_DIR);
  if ((await readStateBackup(stateDir)) === undefined) throw new CliError(`restoring the state folder ${stateDir}: there is no complete copy in ${backup}`);
  return locked(stateDir, async () => {
    const kept = join(stateDir, REPLACED_DIR, new Date().toISOString().replace(/[:.]/g, "-"));
    await mkdir(kept, { recursive: true, mode: 0o700 });
    const specs = join(stateDir, "specs");
    const staged = join(stateDir, "specs.restoring");
    await rm(staged, { recursive: true, force: true });
    if (await exists(join(backup, "specs"))) await copyTree(join(backup, "specs"), staged);
    if (await exists(specs)) await rename(specs, join(kept, "specs"));
    if (await exists(staged)) await rename(staged, specs);
    const version = join(backup, STATE_VERSION_FILE);
    if (await exists(version)) {
      const temp = join(stateDir, `.${STATE_VERSION_FILE}.restoring`);
      await rm(temp, { force: true });
      await copyTree(version, temp);
      await rename(temp, join(stateDir, STATE_VERSION_FILE));
    } else await rm(join(stateDir, STATE_VERSION_FILE), { force: true });
    await rm(backup, { recursive: true, force: true });
    return kept;
  });
}
