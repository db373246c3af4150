/**
 * `coyote update` and `coyote update --rollback` as a library: prepare the new release beside the
 * running one, copy what migrations change, migrate the state folder with the new release's own
 * code, switch, restart the components one by one and wait for each to be healthy; when one is
 * not, stop them, put the copy back, switch back and start them again on the old release.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { acquireFileLock } from "@coyote/spec";
import { CliError } from "../errors.ts";
import { prepareRelease, type PrepareOptions, type PreparedRelease } from "./prepare.ts";
import { runCommand, type CommandLine } from "./run.ts";
import { waitHealthy, type HealthOptions, type ServiceManager } from "./services.ts";
import { currentStateVersion, readStateBackup, restoreStateBackup, takeStateBackup } from "./state-backup.ts";
import { CURRENT, PREVIOUS, readReleaseLink, rollback, switchRelease } from "./switch.ts";

/** Everything an update works with. */
export interface UpdateContext {
  /** The install folder (`/opt/coyote`). */
  readonly root: string;
  /** The state folder (`/var/lib/coyote`). */
  readonly stateDir: string;
  /** What restarts the components. */
  readonly services: ServiceManager;
  /** The components, in the order they restart (stopped in the reverse order). */
  readonly components: readonly string[];
  /** The new release's command that migrates the state folder (run in the release folder). */
  readonly migrate: (release: PreparedRelease) => CommandLine;
  /** The deadline of the migration, in milliseconds (default 30 minutes). */
  readonly migrateTimeoutMs?: number;
  /** How long each component has to come up. */
  readonly health: HealthOptions;
  /** The environment of the commands run. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Told what is being done, for people and the log. */
  readonly say: (line: string) => void;
}

/** What an update did. */
export interface UpdateResult {
  /** The release now current. */
  readonly release: string;
  /** The release before it. */
  readonly previous: string | undefined;
  /** False when the checkout's release was already the current one (nothing was restarted). */
  readonly changed: boolean;
}

/** A component that did not come up, and why. */
interface Failure {
  readonly component: string;
  readonly reason: string;
}

/**
 * The user the migration runs as: the state folder's owner when this runs as root and the folder
 * is someone else's (the `coyote` user on a box), so that what it writes stays theirs; else
 * undefined (this process's own user).
 */
async function stateOwner(stateDir: string): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const info = await stat(stateDir);
  return info.uid === 0 ? undefined : { uid: info.uid, gid: info.gid };
}

async function withUpdateLock<T>(root: string, fn: () => Promise<T>): Promise<T> {
  const found = await stat(root).catch(() => undefined);
  if (found?.isDirectory() !== true) throw new CliError(`updating: there is no install folder ${root} (install.sh makes it; --root names another)`);
  const lock = await acquireFileLock(join(root, "update.lock"), { timeoutMs: 5000, what: `updates of ${root} (another coyote update is running)` });
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}

/** Restarts the components in order, each waited for; stops at the first that does not come up. */
async function restartAll(ctx: UpdateContext, release: string): Promise<Failure | undefined> {
  for (const component of ctx.components) {
    ctx.say(`restarting ${component} on release ${release}`);
    const since = Date.now();
    try {
      await ctx.services.restart(component);
    } catch (error) {
      return { component, reason: `restarting it failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    const health = await waitHealthy(component, ctx.services, ctx.stateDir, since, ctx.health);
    if (!health.healthy) return { component, reason: `not healthy within ${Math.round(ctx.health.timeoutMs / 1000)} s: ${health.reason}` };
    ctx.say(`${component} is up (pid ${health.pid})`);
  }
  return undefined;
}

/** Stops every component, last first; a stop that fails is reported and the others still stop. */
async function stopAll(ctx: UpdateContext): Promise<void> {
  for (const component of [...ctx.components].reverse()) {
    try {
      await ctx.services.stop(component);
    } catch (error) {
      ctx.say(`stopping ${component} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

/**
 * Puts the state copy back when the state moved since it was taken (a migration ran), the
 * components stopped meanwhile so that none writes into a folder being swapped.
 * @returns a sentence for people, empty when nothing was restored.
 */
async function restoreIfMigrated(ctx: UpdateContext): Promise<string> {
  const backup = await readStateBackup(ctx.stateDir);
  if (backup === undefined) return "";
  if ((await currentStateVersion(ctx.stateDir).catch(() => Number.NaN)) === backup.stateVersion) return "";
  const kept = await restoreStateBackup(ctx.stateDir);
  ctx.say(`state folder restored to the copy taken at ${backup.takenAt}; the specs it replaced are kept in ${kept}`);
  return `; the state folder was restored to the copy taken before migrating (the specs it replaced are kept in ${kept})`;
}

/**
 * Updates the box to the release made from `source`. When a component does not come up healthy,
 * goes back by itself: components stopped, state copy restored, links switched back, components
 * started again on the old release.
 * @throws CliError naming what failed: the migration (nothing switched), or the component that did
 *   not come up and where its log is (rolled back).
 */
export async function update(source: string, ctx: UpdateContext, prepare: Partial<PrepareOptions> = {}): Promise<UpdateResult> {
  return withUpdateLock(ctx.root, async () => {
    const old = await readReleaseLink(ctx.root, CURRENT);
    const prepared = await prepareRelease(source, ctx.root, { ...prepare, say: prepare.say ?? ctx.say, env: prepare.env ?? ctx.env });
    if (prepared.release === old) {
      ctx.say(`release ${old} is already the current one; nothing to do`);
      return { release: old, previous: await readReleaseLink(ctx.root, PREVIOUS), changed: false };
    }
    const backup = await takeStateBackup(ctx.stateDir, { fromRelease: old, toRelease: prepared.release });
    ctx.say(`copied the specs and the state version (${backup.stateVersion ?? "none"}) to ${join(ctx.stateDir, "update", "backup")}`);
    const migrate = ctx.migrate(prepared);
    try {
      const owner = await stateOwner(ctx.stateDir);
      const output = await runCommand(migrate, {
        user: owner,
        cwd: prepared.dir,
        env: { ...ctx.env, COYOTE_STATE: ctx.stateDir, COYOTE_HOME: prepared.dir },
        timeoutMs: ctx.migrateTimeoutMs ?? 30 * 60_000,
        what: `migrating the state folder with release ${prepared.release}`,
      });
      for (const line of output.trim().split("\n").filter((l) => l !== "")) ctx.say(line);
    } catch (error) {
      // A migration that failed half-way may have changed some of the folder: the copy goes back.
      const kept = await restoreStateBackup(ctx.stateDir);
      throw new CliError(`${error instanceof Error ? error.message : String(error)}\nnothing was switched: release ${old ?? "(none)"} keeps running, and the state folder is as it was before (the specs the migration touched are kept in ${kept})`, undefined, { cause: error });
    }
    const links = await switchRelease(ctx.root, prepared.release);
    ctx.say(`switched ${join(ctx.root, CURRENT)} to ${prepared.release}${old === undefined ? "" : ` (previous: ${old})`}`);
    const failure = await restartAll(ctx, prepared.release);
    if (failure === undefined) return { release: prepared.release, previous: links.previous, changed: true };
    const what = `${failure.component} did not come up healthy on release ${prepared.release} (${failure.reason}); its log: ${ctx.services.logHint(failure.component)}`;
    if (old === undefined) throw new CliError(`${what}; there is no previous release to go back to`);
    ctx.say(`${what}; rolling back to ${old}`);
    await stopAll(ctx);
    const restored = await restoreIfMigrated(ctx);
    await rollback(ctx.root);
    const again = await restartAll(ctx, old);
    const after = again === undefined ? "" : `; after the rollback, ${again.component} did not come up either (${again.reason}); its log: ${ctx.services.logHint(again.component)}`;
    throw new CliError(`${what}\nrolled back to release ${old}${restored}${after}`);
  });
}

/**
 * Goes back to the previous release by hand (`coyote update --rollback`): when the update being
 * undone migrated the state folder, the components are stopped and the copy taken before it is put
 * back; then the links are switched and every component restarts on the previous release.
 * @throws CliError when there is no previous release, or a component does not come up (then the
 *   links stay on the previous release: run it again to go forward).
 */
export async function rollbackUpdate(ctx: UpdateContext): Promise<UpdateResult & { readonly restored: boolean }> {
  return withUpdateLock(ctx.root, async () => {
    const current = await readReleaseLink(ctx.root, CURRENT);
    const previous = await readReleaseLink(ctx.root, PREVIOUS);
    if (previous === undefined) throw new CliError(`rolling back: there is no previous release in ${ctx.root}`);
    const backup = await readStateBackup(ctx.stateDir);
    const undoes = backup !== undefined && backup.toRelease === current && backup.fromRelease === previous;
    let restored = "";
    if (undoes) {
      await stopAll(ctx);
      restored = await restoreIfMigrated(ctx);
    }
    await rollback(ctx.root);
    ctx.say(`switched ${join(ctx.root, CURRENT)} back to ${previous}`);
    const failure = await restartAll(ctx, previous);
    if (failure !== undefined) {
      throw new CliError(`rolled back to release ${previous}${restored}, but ${failure.component} did not come up healthy (${failure.reason}); its log: ${ctx.services.logHint(failure.component)}`);
    }
    return { release: previous, previous: current, changed: true, restored: restored !== "" };
  });
}
