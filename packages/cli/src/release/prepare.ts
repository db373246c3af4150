/**
 * Making a release: a checkout's tracked files copied into `<root>/releases/<release>`, its
 * dependencies installed and its build run there, beside the release that is running. The folder
 * is complete once its marker file is written, last; a folder without the marker is what an
 * interrupted run left, and is made again.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, mkdir, readdir, readFile, readlink, realpath, rm, symlink, writeFile, chmod } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { acquireFileLock, writeFileAtomic } from "@coyote/spec";
import { CliError } from "../errors.ts";
import { runCommand, type CommandLine } from "./run.ts";

/** The file that marks a release folder as complete, written last. */
export const RELEASE_MARKER = ".coyote-release.json";

/** Folders never copied into a release, wherever they are: dependencies, state, build output, git. */
export const EXCLUDED = new Set(["node_modules", ".coyote", ".coyote-runtime", "dist", ".git", ".turbo", ".next"]);

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

/** One file of the checkout. */
interface SourceEntry {
  /** The path relative to the checkout, `/`-separated. */
  readonly path: string;
  /** A file's content, or a symbolic link's target. */
  readonly data: Buffer;
  /** Whether it is a symbolic link. */
  readonly link: boolean;
  /** A file's mode: 0o755 when any execute bit is set, else 0o644. */
  readonly mode: number;
}

const RELEASE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Whether a string can name a release folder. */
export function isReleaseName(name: string): boolean {
  return RELEASE_NAME.test(name) && !name.includes("..");
}

const execFileAsync = promisify(execFile);

/** A git command in the checkout, without the user's or the system's configuration; at most a minute and 64 MiB of output. */
async function git(source: string, args: readonly string[], env: Readonly<Record<string, string | undefined>>): Promise<string> {
  const { stdout } = await execFileAsync("git", ["-C", source, ...args], {
    cwd: source,
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
    encoding: "utf8",
    env: { ...env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null", LC_ALL: "C" },
  });
  return stdout;
}

/** The checkout's top folder and commit when it is a git work tree, else undefined. */
async function gitCheckout(source: string, env: Readonly<Record<string, string | undefined>>): Promise<{ commit: string; clean: boolean } | undefined> {
  let top: string;
  try {
    top = (await git(source, ["rev-parse", "--show-toplevel"], env)).trim();
  } catch {
    return undefined;
  }
  if ((await realpath(top)) !== source) {
    throw new CliError(`preparing a release from ${source}: it is inside the git work tree ${top}, not its top; name the top folder`);
  }
  const commit = (await git(source, ["rev-parse", "--short=12", "HEAD"], env)).trim();
  if (!/^[0-9a-f]{7,40}$/.test(commit)) throw new CliError(`preparing a release from ${source}: git names no commit for HEAD (${JSON.stringify(commit.slice(0, 80))})`);
  const clean = (await git(source, ["status", "--porcelain", "--untracked-files=no"], env)).trim() === "";
  return { commit, clean };
}

/** Whether a relative path lies in an excluded folder. */
function excluded(path: string): boolean {
  return path.split("/").some((part) => EXCLUDED.has(part));
}

/** The paths to copy: git's tracked files, or every file of a folder that is not a git work tree. */
async function sourcePaths(source: string, tracked: boolean, env: Readonly<Record<string, string | undefined>>): Promise<string[]> {
  if (tracked) {
    return (await git(source, ["ls-files", "-z", "--cached"], env)).split("\0").filter((p) => p !== "" && !excluded(p));
  }
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(source, rel), { withFileTypes: true })) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (EXCLUDED.has(entry.name)) continue;
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile() || entry.isSymbolicLink()) out.push(path);
    }
  };
  await walk("");
  return out;
}

/** Reads the files to copy, skipping tracked files deleted from the work tree and submodules. */
async function readSource(source: string, paths: readonly string[]): Promise<SourceEntry[]> {
  const entries: SourceEntry[] = [];
  for (const path of [...paths].sort()) {
    const full = join(source, path);
    if (!resolve(full).startsWith(`${source}${sep}`)) throw new CliError(`preparing a release from ${source}: the path ${JSON.stringify(path)} leaves the checkout`);
    const found = await lstat(full).catch(() => undefined);
    if (found === undefined || found.isDirectory()) continue;
    if (found.isSymbolicLink()) entries.push({ path, data: Buffer.from(await readlink(full)), link: true, mode: 0o777 });
    else if (found.isFile()) entries.push({ path, data: await readFile(full), link: false, mode: (found.mode & 0o111) !== 0 ? 0o755 : 0o644 });
  }
  return entries;
}

/** The hash of what a release holds: every entry's path, kind, mode and content. */
function contentHash(entries: readonly SourceEntry[]): string {
  const hash = createHash("sha256");
  for (const entry of entries) {
    hash.update(`${entry.path}\0${entry.link ? "l" : "f"}${entry.mode.toString(8)}\0${entry.data.length}\0`);
    hash.update(entry.data);
  }
  return hash.digest("hex");
}

/** The version of the checkout: its package.json's, else the CLI package's. */
async function versionOf(source: string): Promise<string> {
  for (const file of ["package.json", join("packages", "cli", "package.json")]) {
    let text: string;
    try {
      text = await readFile(join(source, file), "utf8");
    } catch {
      continue;
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as { version?: unknown }).version;
    } catch (cause) {
      throw new CliError(`preparing a release from ${source}: ${file} is not valid JSON`, undefined, { cause });
    }
    if (version === undefined) continue;
    if (typeof version !== "string" || !isReleaseName(version)) {
      throw new CliError(`preparing a release from ${source}: the version in ${file} (${JSON.stringify(version).slice(0, 80)}) cannot name a release folder (letters, digits, ".", "_" and "-")`);
    }
    return version;
  }
  throw new CliError(`preparing a release from ${source}: no version in package.json nor in packages/cli/package.json; is this a Coyote checkout?`);
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

/** Writes the entries into a new folder, links as links, files with their modes. */
async function copyInto(dir: string, entries: readonly SourceEntry[]): Promise<void> {
  for (const entry of entries) {
    const target = join(dir, entry.path);
    await mkdir(dirname(target), { recursive: true });
    if (entry.link) await symlink(entry.data.toString(), target);
    else {
      await writeFile(target, entry.data, { mode: entry.mode });
      await chmod(target, entry.mode);
    }
  }
}

/**
 * Makes a release of a checkout in `<root>/releases/<release>`, or reuses the complete one of
 * that name: release = `<version>-<short commit>` for a clean git work tree,
 * `<version>-<short commit>-<content hash>` when tracked files were changed, and
 * `<version>-<content hash>` without git. Only git's tracked files are copied (never
 * `node_modules`, `.coyote`, `dist`). Then the install and build commands run in it, each with a
 * deadline, and the marker is written last. Runs of two processes are serialised by a lock.
 * @param source the checkout.
 * @param root the install folder (`/opt/coyote`).
 * @throws CliError naming what failed; the half-made folder is left to be made again.
 */
export async function prepareRelease(source: string, root: string, options: PrepareOptions): Promise<PreparedRelease> {
  const say = options.say ?? (() => undefined);
  let checkout: string;
  try {
    checkout = await realpath(resolve(source));
    if (!(await lstat(checkout)).isDirectory()) throw new Error("not a folder");
  } catch (cause) {
    throw new CliError(`preparing a release from ${source}: ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
  }
  const version = await versionOf(checkout);
  const repo = await gitCheckout(checkout, options.env);
  const entries = await readSource(checkout, await sourcePaths(checkout, repo !== undefined, options.env));
  if (entries.length === 0) throw new CliError(`preparing a release from ${checkout}: no files to copy`);
  const hash = contentHash(entries);
  const release = repo === undefined ? `${version}-${hash.slice(0, 12)}` : repo.clean ? `${version}-${repo.commit}` : `${version}-${repo.commit}-${hash.slice(0, 8)}`;
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
    await copyInto(dir, entries);
    const env = options.env;
    say(`installing dependencies in ${dir}`);
    await runCommand(options.install ?? { command: "npm", args: ["ci", "--no-audit", "--no-fund", "--loglevel=error"] }, { cwd: dir, env, timeoutMs, what: `installing the dependencies of release ${release}` }).catch(wrap);
    say(`building release ${release}`);
    await runCommand(options.build ?? { command: "npm", args: ["run", "build"] }, { cwd: dir, env, timeoutMs, what: `building release ${release}` }).catch(wrap);
    const info: ReleaseInfo = { release, version, commit: repo?.commit, contentHash: hash, preparedAt: new Date().toISOString() };
    await writeFileAtomic(join(dir, RELEASE_MARKER), `${JSON.stringify(info, null, 2)}\n`, { mode: 0o644 });
    return { release, dir, reused: false };
  } finally {
    await lock.release();
  }
}

function wrap(error: unknown): never {
  throw new CliError(error instanceof Error ? error.message : String(error), undefined, { cause: error });
}
