// An earlier commit of the workspace, unpacked beside a benchmark's work folder so that its
// snitch-proxy runs in the same interleaved run as today's: the only way to compare two commits
// on a machine whose speed drifts from minute to minute.
//
// The tree comes from `git archive` (no worktree, nothing written to the repository). It gets a
// node_modules folder of its own in which every workspace package (@coyote/*) points at the old
// tree, and every other package at the checkout's installed one, so that the old code runs with
// today's third-party dependencies and none of today's own code.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";

const WORKSPACE_GLOBS = ["apps", "actuators", "packages", "tooling"] as const;
const WORKSPACE_DIRS = ["bench", "e2e"] as const;

/** The workspace packages of a tree: package name → folder. */
function workspacePackages(root: string): Map<string, string> {
  const found = new Map<string, string>();
  const add = (dir: string) => {
    const manifest = join(dir, "package.json");
    if (!existsSync(manifest)) return;
    const name = (JSON.parse(readFileSync(manifest, "utf8")) as { name?: unknown }).name;
    if (typeof name === "string") found.set(name, dir);
  };
  for (const group of WORKSPACE_GLOBS) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) add(join(dir, entry.name));
  }
  for (const dir of WORKSPACE_DIRS) add(join(root, dir));
  return found;
}

/**
 * Unpacks commit `ref` of the repository at `repo` into `dir` and links its dependencies; returns
 * the commit's short hash. Throws with git's message when the commit does not exist.
 */
export function unpackBaseline(repo: string, ref: string, dir: string): string {
  const commit = execFileSync("git", ["-C", repo, "rev-parse", "--short", `${ref}^{commit}`], { encoding: "utf8", timeout: 10_000 }).trim();
  mkdirSync(dir, { recursive: true });
  execFileSync("sh", ["-c", 'git -C "$1" archive --format=tar "$2" | tar -x -C "$3"', "sh", repo, commit, dir], { timeout: 60_000, maxBuffer: 1 << 20 });
  const modules = join(dir, "node_modules");
  mkdirSync(modules);
  const own = workspacePackages(dir);
  const installed = join(repo, "node_modules");
  for (const entry of readdirSync(installed)) {
    if (entry.startsWith(".")) continue;
    if (entry.startsWith("@")) {
      mkdirSync(join(modules, entry));
      for (const scoped of readdirSync(join(installed, entry))) {
        const name = `${entry}/${scoped}`;
        symlinkSync(own.get(name) ?? join(installed, entry, scoped), join(modules, entry, scoped));
      }
    } else {
      symlinkSync(join(installed, entry), join(modules, entry));
    }
  }
  return commit;
}
