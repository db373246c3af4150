/**
 * What a checkout makes as a release: its files (git's tracked files, or every file of a folder
 * that is not a git work tree, never dependencies, state or build output), their hash and the
 * release's name. The one definition of a release's name, used by `coyote update` and, before any
 * release is built, by install.sh through `checkout-main.ts`: this file imports only Node's own
 * modules and uses only syntax Node runs from TypeScript sources as they are.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, mkdir, readdir, readFile, readlink, realpath, symlink, writeFile } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import { promisify } from "node:util";

/** Folders never copied into a release, wherever they are: dependencies, state, build output, git. */
export const EXCLUDED: ReadonlySet<string> = new Set(["node_modules", ".coyote", ".coyote-runtime", "dist", ".git", ".turbo", ".next"]);

/** A checkout that cannot make a release, and why. */
export class ReleaseSourceError extends Error {
  override readonly name = "ReleaseSourceError";
}

/** One file of the checkout. */
export interface SourceEntry {
  /** The path relative to the checkout, `/`-separated. */
  readonly path: string;
  /** A file's content, or a symbolic link's target. */
  readonly data: Buffer;
  /** Whether it is a symbolic link. */
  readonly link: boolean;
  /** A file's mode: 0o755 when any execute bit is set, else 0o644. */
  readonly mode: number;
}

/** A checkout read as a release. */
export interface ReleaseSource {
  /** The checkout's real path. */
  readonly checkout: string;
  /** `<version>-<short commit>` for a clean git work tree, `<version>-<short commit>-<8 of the content hash>` when tracked files were changed, `<version>-<12 of the content hash>` without git. */
  readonly release: string;
  /** The version from the checkout's package.json (else the CLI package's). */
  readonly version: string;
  /** The git commit, when the checkout is a git work tree. */
  readonly commit: string | undefined;
  /** The hash of the entries (their paths, kinds, modes and contents). */
  readonly contentHash: string;
  /** The files to copy, sorted by path. */
  readonly entries: readonly SourceEntry[];
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

/** The checkout's commit when it is the top of a git work tree, else undefined (no git, or not a work tree). */
async function gitCheckout(source: string, env: Readonly<Record<string, string | undefined>>): Promise<{ commit: string; clean: boolean } | undefined> {
  let top: string;
  try {
    top = (await git(source, ["rev-parse", "--show-toplevel"], env)).trim();
  } catch {
    return undefined;
  }
  if ((await realpath(top)) !== source) {
    throw new ReleaseSourceError(`preparing a release from ${source}: it is inside the git work tree ${top}, not its top; name the top folder`);
  }
  const commit = (await git(source, ["rev-parse", "--short=12", "HEAD"], env)).trim();
  if (!/^[0-9a-f]{7,40}$/.test(commit)) throw new ReleaseSourceError(`preparing a release from ${source}: git names no commit for HEAD (${JSON.stringify(commit.slice(0, 80))})`);
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
  // Sorted by code unit, as every copy of this code sorts them: the hash must not move with a locale.
  for (const path of [...paths].sort()) {
    const full = join(source, path);
    if (!resolve(full).startsWith(`${source}${sep}`)) throw new ReleaseSourceError(`preparing a release from ${source}: the path ${JSON.stringify(path)} leaves the checkout`);
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
    hash.update(`${entry.path}\0${entry.link ? "l" : "f"}${entry.mode.toString(8)}\0${String(entry.data.length)}\0`);
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
      throw new ReleaseSourceError(`preparing a release from ${source}: ${file} is not valid JSON`, { cause });
    }
    if (version === undefined) continue;
    if (typeof version !== "string" || !isReleaseName(version)) {
      throw new ReleaseSourceError(`preparing a release from ${source}: the version in ${file} (${JSON.stringify(version).slice(0, 80)}) cannot name a release folder (letters, digits, ".", "_" and "-")`);
    }
    return version;
  }
  throw new ReleaseSourceError(`preparing a release from ${source}: no version in package.json nor in packages/cli/package.json; is this a Coyote checkout?`);
}

/**
 * Reads a checkout as a release: its version, commit, files and their hash, and the release's name.
 * @throws ReleaseSourceError naming what is wrong with the checkout.
 */
export async function readReleaseSource(source: string, env: Readonly<Record<string, string | undefined>>): Promise<ReleaseSource> {
  let checkout: string;
  try {
    checkout = await realpath(resolve(source));
    if (!(await lstat(checkout)).isDirectory()) throw new Error("not a folder");
  } catch (cause) {
    throw new ReleaseSourceError(`preparing a release from ${source}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const version = await versionOf(checkout);
  const repo = await gitCheckout(checkout, env);
  const entries = await readSource(checkout, await sourcePaths(checkout, repo !== undefined, env));
  if (entries.length === 0) throw new ReleaseSourceError(`preparing a release from ${checkout}: no files to copy`);
  const hash = contentHash(entries);
  const release = repo === undefined ? `${version}-${hash.slice(0, 12)}` : repo.clean ? `${version}-${repo.commit}` : `${version}-${repo.commit}-${hash.slice(0, 8)}`;
  return { checkout, release, version, commit: repo?.commit, contentHash: hash, entries };
}

/** Writes the entries into a folder, links as links, files with their modes. */
export async function copyEntries(dir: string, entries: readonly SourceEntry[]): Promise<void> {
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
