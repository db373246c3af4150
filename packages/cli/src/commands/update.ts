import { chown, mkdir, open, realpath, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { createLogger, logFileFor } from "@coyote/log";
import { STATE_VERSION, StateStore, readStateVersion } from "@coyote/spec";
import { COMPONENTS } from "../components.ts";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import type { Io } from "../io.ts";
import { releaseMigrateCommand, rollbackUpdate, systemdManager, update, type UpdateContext } from "../release/index.ts";

interface UpdateOptions {
  source?: string;
  rollback?: boolean;
  root?: string;
  timeout?: number;
  migrateState?: boolean;
}

/** The default install folder of a production box (docs/PRODUCTION.md). */
export const DEFAULT_ROOT = "/opt/coyote";

/**
 * The release this CLI runs from, when it runs from `<root>/releases/<release>`, directly or
 * through the `<root>/current` link (as the units and `/usr/local/bin/coyote` run it).
 */
async function runningRelease(home: string): Promise<{ root: string; release: string } | undefined> {
  const real = await realpath(home).catch(() => home);
  return basename(dirname(real)) === "releases" ? { root: dirname(dirname(real)), release: basename(real) } : undefined;
}

/**
 * The update's log file, made the state folder owner's when this runs as root on a folder that
 * is not root's (a box's `/var/lib/coyote`), so that `coyote logs` run as that user reads it and
 * no file of root's lands among theirs.
 */
async function updateLogFile(stateDir: string): Promise<string> {
  const file = logFileFor(stateDir, "update");
  if (process.getuid?.() !== 0) return file;
  const owner = await stat(stateDir).catch(() => undefined);
  if (owner === undefined || owner.uid === 0) return file;
  if ((await mkdir(dirname(file), { recursive: true, mode: 0o700 })) !== undefined) await chown(dirname(file), owner.uid, owner.gid);
  await (await open(file, "a", 0o600)).close();
  await chown(file, owner.uid, owner.gid);
  return file;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new CliError(`--timeout: not a whole number of seconds from 1 to 3600: ${value}`, EXIT.USAGE);
  return n;
}

/** Adds `coyote update`. */
export function updateCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("update")
    .description("update this box to the release made from a checkout (migrating the state folder, restarting each component, rolling back by itself when one does not come up), or go back with --rollback")
    .option("--source <dir>", "the checkout to make the new release from (default: this checkout, when the CLI runs from one)")
    .option("--rollback", "go back to the previous release, and to the state copy taken before the update that is undone")
    .option("--root <dir>", `the install folder (default: the one this CLI runs from, else ${DEFAULT_ROOT})`)
    .option("--timeout <seconds>", "how long each component has to come up healthy", seconds, 90)
    .addOption(new Option("--migrate-state", "migrate the state folder to this build's state version and exit (run by an update with the new release)").hideHelp())
    .action(async (options: UpdateOptions) => {
      const running = await runningRelease(env.home);
      if (options.migrateState === true) {
        await migrateState(env, io, running?.release);
        return;
      }
      if (options.rollback === true && options.source !== undefined) throw new CliError("--rollback and --source do not go together: a rollback goes back to the previous release", EXIT.USAGE);
      const root = resolve(options.root ?? running?.root ?? DEFAULT_ROOT);
      const logger = createLogger({ component: "update", file: await updateLogFile(env.stateDir) });
      const say = (line: string) => {
        io.err(`coyote update: ${line}`);
        logger.info({ root }, line);
      };
      const ctx: UpdateContext = {
        root,
        stateDir: env.stateDir,
        services: systemdManager({ stateDir: env.stateDir }),
        components: COMPONENTS.filter((c) => c.start !== undefined).map((c) => c.name),
        migrate: (release) => releaseMigrateCommand(release),
        health: { timeoutMs: (options.timeout ?? 90) * 1000, settleMs: 3000 },
        env: env.processEnv,
        say,
      };
      try {
        if (options.rollback === true) {
          const result = await rollbackUpdate(ctx);
          io.out(`rolled back to release ${result.release}${result.restored ? ", with the state folder as it was before the update" : ""}`);
          return;
        }
        let source = options.source;
        if (source === undefined) {
          if (running !== undefined) throw new CliError(`name the checkout to update from: coyote update --source DIR (this CLI runs from release ${running.release})`, EXIT.USAGE);
          source = env.home;
        }
        const result = await update(resolve(source), ctx);
        io.out(result.changed ? `updated to release ${result.release}${result.previous === undefined ? "" : ` (coyote update --rollback goes back to ${result.previous})`}` : `release ${result.release} is already running`);
      } catch (error) {
        logger.error({ err: error }, error instanceof Error ? error.message : String(error));
        throw error;
      } finally {
        await logger.close();
      }
    });
}

/** `coyote update --migrate-state`: opens the state folder with this build, which migrates it. */
async function migrateState(env: CliEnv, io: Io, release: string | undefined): Promise<void> {
  const before = (await readStateVersion(env.stateDir))?.schemaVersion;
  const store = await StateStore.open(env.stateDir, release === undefined ? {} : { writtenBy: release });
  for (const run of store.migrations) io.out(`state folder ${store.root}: migrated from version ${run.from} to ${run.to}: ${run.description}`);
  io.out(`state folder ${store.root} is at state version ${STATE_VERSION}${before === undefined ? "" : before === STATE_VERSION ? " (unchanged)" : ` (was ${before})`}`);
}
