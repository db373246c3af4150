/**
 * Making a release: a checkout's tracked files copied into `<root>/releases/<release>`, its
 * dependencies installed and its build run there, beside the release that is running. The folder
 * is complete once its marker file is written, last; a folder without the marker is what an
 * interrupted run left, and is made again.
 */
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { acquireFileLock, writeFileAtomic } from "@coyote/spec";
import { CliError } from "../errors.ts";
import { runCommand, type CommandLine } from "./run.ts";
import { copyEntries, readReleaseSource } from "./source.ts";

export { EXCLUDED, isReleaseName } from "./source.ts";

/** The file that marks a release folder as complete, written last. */
export const RELEASE_MARKER = ".coyote-release.json";

/** What the marker file of a complete release says. */
export interface ReleaseInfo {
  /** The release's name, `<version>-<commit or content hash>`. */
  readonly release: string;
  /** The version from the checkout's package.json. */
  readonly version: string;
  /** The git commit it was made from, when the checkout is a git work tree. */
  readonly commit: string | undefined;
  /** The hash of the copied files (their paths, kinds, modes and contents). */
  readonly contentHash: string;
  /** When it was finished, ISO 8601 UTC. */
  readonly preparedAt: string;
}

/** Options of {@link prepareRelease}. */
export interface PrepareOptions {
  /** Installs the dependencies in the release folder (default `npm ci`). */
  readonly install?: CommandLine;
  /** Builds the release (default `npm run build`). */
  readonly build?: CommandLine;
  /** The deadline of each of the two commands, in milliseconds (default 30 minutes). */
  readonly timeoutMs?: number;
  /** The environment of git and of the two commands. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Told what is being done, for people. */
  readonly say?: (line: string) => void;
}

/** A release ready to be switched to. */
export interface PreparedRelease {
  /** Its name. */
  readonly release: string;
  /** Its folder, `<root>/releases/<release>`. */
  readonly dir: string;
  /** Whether a complete folder of that name was there already and was reused. */
  readonly reused: boolean;
}

/** The marker of a complete release folder, or undefined when there is none or it is not its own. */
export async function readReleaseInfo(dir: string, release: string): Promise<ReleaseInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dir, RELEASE_MARKER), "utf8")) as Partial<ReleaseInfo>;
    return info.release === release ? (info as ReleaseInfo) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes a release of a checkout in `<root>/releases/<release>`, or reuses the complete one of
 * that name (named by {@link readReleaseSource}). Only git's tracked files are copied (never
 * `node_modules`, `.coyote`, `dist`). Dependencies come from npm's cache where it has them. Then the install and build commands run in it, each with a
 * deadline, and the marker is written last. Runs of two processes are serialised by a lock.
 * @param source the checkout.
 * @param root the install folder (`/opt/coyote`).
 * @throws CliError naming what failed; the half-made folder is left to be made again.
 */
export async function prepareRelease(source: string, root: string, options: PrepareOptions): Promise<PreparedRelease> {
  const say = options.say ?? (() => undefined);
  const { checkout, release, version, commit, contentHash, entries } = await readReleaseSource(source, options.env).catch(wrap);
  const releases = join(root, "releases");
  const dir = join(releases, release);
  await mkdir(releases, { recursive: true, mode: 0o755 });
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const lock = await acquireFileLock(join(releases, ".prepare.lock"), { timeoutMs: timeoutMs * 2, what: `the releases folder ${releases}` });
  try {
    if ((await readReleaseInfo(dir, release)) !== undefined) {
      say(`release ${release} is already prepared in ${dir}`);
      return { release, dir, reused: true };
    }
    // A folder without its marker is what an interrupted run left: made again from nothing.
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { mode: 0o755 });
    say(`copying ${entries.length} files of ${checkout} into ${dir}`);
    await copyEntries(dir, entries);
    const env = options.env;
    say(`installing dependencies in ${dir}`);
    await runCommand(options.install ?? { command: "npm", args: ["ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"] }, { cwd: dir, env, timeoutMs, what: `installing the dependencies of release ${release}` }).catch(wrap);
    say(`building release ${release}`);
    await runCommand(options.build ?? { command: "npm", args: ["run", "build"] }, { cwd: dir, env, timeoutMs, what: `building release ${release}` }).catch(wrap);
    const info: ReleaseInfo = { release, version, commit, contentHash, preparedAt: new Date().toISOString() };
    await writeFileAtomic(join(dir, RELEASE_MARKER), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
    return { release, dir, reused: false };
  } finally {
    await lock.release();
  }
}

function wrap(error: unknown): never {
  throw new CliError(error instanceof Error ? error.message : String(error), undefined, { cause: error });
}
