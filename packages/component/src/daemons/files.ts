// File and process helpers of the daemon supervisor: the change signature of watched
// configuration files, and signals to a daemon's whole process group.
import { execFileSync } from "node:child_process";
import { lstat, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/** The most files of one watched folder that count; a folder with more is cut, not read whole. */
const MAX_WATCHED_ENTRIES = 1000;

async function statLine(path: string): Promise<string> {
  try {
    const s = await lstat(path);
    // An atomic rewrite (temp file + rename) always changes the inode, even within one mtime tick.
    return `${path}|${s.ino}|${s.size}|${s.mtimeMs}`;
  } catch {
    return `${path}|missing`;
  }
}

/**
 * A cheap signature of the files a daemon reads as configuration: inode, size and mtime of each
 * file, and of each file one level inside each watched folder. Two equal signatures mean nothing
 * was rewritten in between.
 */
export async function watchSignature(paths: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const path of paths) {
    let isDir = false;
    try {
      isDir = (await lstat(path)).isDirectory();
    } catch {
      // missing: its absence is part of the signature
    }
    if (!isDir) {
      lines.push(await statLine(path));
      continue;
    }
    const names = (await readdir(path).catch(() => [] as string[])).filter((n) => !n.startsWith(".")).sort().slice(0, MAX_WATCHED_ENTRIES);
    lines.push(`${path}/`);
    for (const name of names) lines.push(await statLine(join(path, name)));
  }
  return lines.join("\n");
}

/** Sends a signal to a whole process group; false when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The uid and gid of a system user, or undefined when there is no such user. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) return undefined;
  try {
    const line = execFileSync("getent", ["passwd", name], { encoding: "utf8", timeout: 5000 }).split("\n")[0] ?? "";
    const fields = line.split(":");
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    return Number.isInteger(uid) && Number.isInteger(gid) && fields[0] === name ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The live (not zombie) processes of a process group, read from /proc. Zombies are left out: an
 * orphaned worker reparented to a pid 1 that does not reap stays a zombie in its group forever.
 */
export async function groupMembers(pgid: number): Promise<number[]> {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    // Without /proc, a signal 0 tells whether anything of the group is left, zombies included.
    return signalGroup(pgid, 0) ? [pgid] : [];
  }
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // The command may hold spaces and parentheses: the fields after the last ")" are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[2]) === pgid) members.push(Number(entry));
  }
  return members;
}

/**
 * Whether a pid still is the daemon a supervisor started: the leader of its own process group,
 * running `program` (as its command or, for a script like Prosody's, as an argument of its
 * interpreter). A pid reused by anything else since is not ours to stop.
 */
export async function leadsGroupRunning(pid: number, program: string): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === undefined || fields[0] === "Z" || Number(fields[2]) !== pid) return false;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return cmdline.split("\0").some((arg) => arg === program || arg.endsWith(`/${program}`));
}
