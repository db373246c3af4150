/**
 * The two symbolic links of an install folder: `current` (the release every unit starts from) and
 * `previous` (what a rollback returns to). Each is replaced atomically: a new link under a
 * temporary name, renamed over the old one, so that a reader sees the old target or the new one,
 * never no link. A switch and a rollback move the two links in the order that leaves a usable pair
 * when the process dies between the two.
 */
import { randomBytes } from "node:crypto";
import { readlink, rename, rm, symlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fsyncDir } from "@coyote/spec";
import { CliError, EXIT } from "../errors.ts";
import { isReleaseName, readReleaseInfo } from "./prepare.ts";

/** The link to the running release. */
export const CURRENT = "current";
/** The link to the release before it. */
export const PREVIOUS = "previous";

/** Where the two links point after a switch or a rollback. */
export interface ReleaseLinks {
  /** The release `current` names. */
  readonly current: string | undefined;
  /** The release `previous` names. */
  readonly previous: string | undefined;
}

/**
 * The release a link names, or undefined when there is no link.
 * @throws CliError when the link points somewhere that is not a release folder of this root.
 */
export async function readReleaseLink(root: string, link: typeof CURRENT | typeof PREVIOUS): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(join(root, link));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CliError(`reading ${join(root, link)}: ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
  }
  const release = basename(target);
  const parent = dirname(target);
  if (!isReleaseName(release) || (parent !== "releases" && parent !== join(root, "releases"))) {
    throw new CliError(`reading ${join(root, link)}: it points at ${target}, not at a release in ${join(root, "releases")}`);
  }
  return release;
}

/** Points a link at a release atomically: a new link under a temporary name, renamed over the old. */
export async function pointLink(root: string, link: typeof CURRENT | typeof PREVIOUS, release: string): Promise<void> {
  const temp = join(root, `.${link}.${process.pid}.${randomBytes(4).toString("hex")}`);
  try {
    await symlink(join("releases", release), temp);
    await rename(temp, join(root, link));
    await fsyncDir(root);
  } catch (cause) {
    await rm(temp, { force: true });
    throw new CliError(`pointing ${join(root, link)} at release ${release}: ${cause instanceof Error ? cause.message : String(cause)}`, undefined, { cause });
  }
}

async function checkComplete(root: string, release: string): Promise<void> {
  if (!isReleaseName(release)) throw new CliError(`switching to release ${JSON.stringify(release)}: not a release name`, EXIT.USAGE);
  if ((await readReleaseInfo(join(root, "releases", release), release)) === undefined) {
    throw new CliError(`switching to release ${release}: ${join(root, "releases", release)} is not a complete release (prepare it first)`, EXIT.NOT_FOUND);
  }
}

/**
 * Makes a release the current one: `previous` → the release that was current, then `current` →
 * the new one. Dying between the two leaves `current` on the old release and `previous` too: the
 * box runs what it ran. Switching to the current release changes nothing.
 * @throws CliError when the release is not complete.
 */
export async function switchRelease(root: string, release: string): Promise<ReleaseLinks> {
  await checkComplete(root, release);
  const current = await readReleaseLink(root, CURRENT);
  if (current === release) return { current, previous: await readReleaseLink(root, PREVIOUS) };
  if (current !== undefined) await pointLink(root, PREVIOUS, current);
  await pointLink(root, CURRENT, release);
  return { current: release, previous: current };
}

/**
 * Goes back to the previous release: `current` → what `previous` names, then `previous` → the
 * release that was current (so that a second rollback goes forward again). `current` moves first:
 * dying between the two leaves the box on the release it was going back to.
 * @throws CliError when there is no previous release, or it is not complete.
 */
export async function rollback(root: string): Promise<ReleaseLinks> {
  const previous = await readReleaseLink(root, PREVIOUS);
  if (previous === undefined) throw new CliError(`rolling back in ${root}: there is no previous release (${join(root, PREVIOUS)} is missing)`, EXIT.NOT_FOUND);
  await checkComplete(root, previous);
  const current = await readReleaseLink(root, CURRENT);
  await pointLink(root, CURRENT, previous);
  if (current !== undefined && current !== previous) await pointLink(root, PREVIOUS, current);
  return { current: previous, previous: current };
}
