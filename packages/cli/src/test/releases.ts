/**
 * Helpers for the release tests: tiny git checkouts that stand for Coyote releases, fast install
 * and build commands, and a service manager that starts each component as a real child process
 * from `<root>/current` (as systemd starts the units), stopped by its process group.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { alive, stopPid } from "@coyote/testing";
import type { CommandLine, PrepareOptions, ServiceManager } from "../release/index.ts";

const run = promisify(execFile);

/** How a release's components and migration behave. */
export interface Behaviour {
  /** Components that start and never write their heartbeat. */
  readonly silent?: readonly string[];
  /** Components that exit at once. */
  readonly exit?: readonly string[];
  /** What the release's migration does: nothing, bump the state version, or fail half-way. */
  readonly migrate?: "none" | "bump" | "fail";
}

/** A component of a test release: beats into stats/<name>.json every 100 ms unless told not to. */
const COMPONENT = `import { appendFileSync, readFileSync, writeFileSync, renameSync, mkdirSync } from "node:fs";
import { join } from "node:path";
const [name, state] = process.argv.slice(2);
const here = import.meta.dirname;
const behaviour = JSON.parse(readFileSync(join(here, "behaviour.json"), "utf8"));
const release = here.split("/").at(-1);
mkdirSync(join(state, "logs"), { recursive: true });
mkdirSync(join(state, "stats"), { recursive: true });
appendFileSync(join(state, "logs", name + ".log"), JSON.stringify({ msg: "started", release, pid: process.pid }) + "\\n");
writeFileSync(join(state, "logs", name + ".release"), release);
if ((behaviour.exit ?? []).includes(name)) { appendFileSync(join(state, "logs", name + ".log"), "cannot start\\n"); process.exit(1); }
const startedAt = new Date().toISOString();
const beat = () => {
  if ((behaviour.silent ?? []).includes(name)) return;
  const file = join(state, "stats", name + ".json");
  const stats = { schemaVersion: 1, component: name, pid: process.pid, startedAt, writtenAt: new Date().toISOString(), process: { rssBytes: 1, heapUsedBytes: 1, uptimeSeconds: process.uptime() } };
  writeFileSync(file + ".tmp" + process.pid, JSON.stringify(stats));
  renameSync(file + ".tmp" + process.pid, file);
};
beat();
setInterval(beat, 100);
process.on("SIGTERM", () => process.exit(0));
`;

/** The release's CLI, as far as an update runs it: \`update --migrate-state\`. */
const CLI = `import { readFileSync, writeFileSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
const here = import.meta.dirname;
const behaviour = JSON.parse(readFileSync(join(here, "behaviour.json"), "utf8"));
const state = process.env.COYOTE_STATE;
if (process.argv.slice(2).join(" ") !== "update --migrate-state" || !state) { console.error("usage: cli.mjs update --migrate-state"); process.exit(2); }
if (process.env.COYOTE_HOME !== here) { console.error("COYOTE_HOME is not the release"); process.exit(2); }
const mode = behaviour.migrate ?? "none";
if (mode === "none") { console.log("nothing to migrate"); process.exit(0); }
mkdirSync(join(state, "specs", "services"), { recursive: true });
writeFileSync(join(state, "specs", "services", "alice.json"), JSON.stringify({ rewrittenBy: here.split("/").at(-1) }));
if (mode === "fail") { console.error("migration failed half-way"); process.exit(1); }
const file = join(state, "state-version.json");
const version = JSON.parse(readFileSync(file, "utf8"));
// Replaced as the state store replaces files: a new file renamed over the old one.
writeFileSync(file + ".tmp", JSON.stringify({ ...version, schemaVersion: version.schemaVersion + 1, writtenBy: here.split("/").at(-1) }));
renameSync(file + ".tmp", file);
console.log("migrated from " + version.schemaVersion + " to " + (version.schemaVersion + 1));
`;

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" };

/** Runs git in a folder as a test user. */
export async function git(dir: string, ...args: string[]): Promise<string> {
  return (await run("git", ["-c", "user.name=Test", "-c", "user.email=test@example.org", "-C", dir, ...args], { env: GIT_ENV })).stdout;
}

/**
 * Makes (or changes and commits again) a tiny git checkout that stands for a Coyote release.
 * @returns the checkout's short commit.
 */
export async function writeCheckout(dir: string, version: string, behaviour: Behaviour): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), `${JSON.stringify({ name: "tiny", version }, null, 2)}\n`);
  await writeFile(join(dir, "component.mjs"), COMPONENT);
  await writeFile(join(dir, "cli.mjs"), CLI);
  await writeFile(join(dir, "run.sh"), "#!/bin/sh\necho run\n", { mode: 0o755 });
  await writeFile(join(dir, "behaviour.json"), JSON.stringify(behaviour));
  if ((await lstat(join(dir, ".git")).catch(() => undefined)) === undefined) await git(dir, "init", "-q", "-b", "main");
  await git(dir, "add", "-A");
  await git(dir, "commit", "-q", "--allow-empty", "-m", `version ${version}`);
  return (await git(dir, "rev-parse", "--short=12", "HEAD")).trim();
}

/** Install and build commands that take milliseconds: they leave `node_modules/installed` and `dist/built`. */
export function fastPrepare(extra: Partial<PrepareOptions> = {}): PrepareOptions {
  return {
    install: { command: process.execPath, args: ["-e", "require('fs').mkdirSync('node_modules'); require('fs').writeFileSync('node_modules/installed', '')"] },
    build: { command: process.execPath, args: ["-e", "require('fs').mkdirSync('dist'); require('fs').writeFileSync('dist/built', '')"] },
    env: process.env,
    timeoutMs: 30_000,
    ...extra,
  };
}

/** The test release's migration command: its own `cli.mjs`. */
export function testMigrate(release: { dir: string }): CommandLine {
  return { command: process.execPath, args: [join(release.dir, "cli.mjs"), "update", "--migrate-state"] };
}

/** A service manager that runs each component as a child process of this test, from `<root>/current`. */
export class ProcessServices implements ServiceManager {
  readonly #children = new Map<string, ChildProcess>();
  readonly restarts: string[] = [];

  constructor(
    private readonly root: string,
    private readonly stateDir: string,
  ) {}

  async restart(component: string): Promise<void> {
    await this.stop(component);
    await mkdir(join(this.stateDir, "logs"), { recursive: true });
    const out = openSync(join(this.stateDir, "logs", `${component}.out`), "a");
    try {
      // The link is followed now, as systemd follows it when it starts a unit.
      const child = spawn(process.execPath, [join(this.root, "current", "component.mjs"), component, this.stateDir], { stdio: ["ignore", out, out], detached: true });
      this.#children.set(component, child);
      this.restarts.push(component);
    } finally {
      closeSync(out);
    }
  }

  async stop(component: string): Promise<void> {
    const child = this.#children.get(component);
    this.#children.delete(component);
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      await stopPid(child.pid, { group: true, graceMs: 5000 });
      await exited;
    }
  }

  mainPid(component: string): Promise<number | undefined> {
    const child = this.#children.get(component);
    const running = child?.pid !== undefined && child.exitCode === null && child.signalCode === null && alive(child.pid);
    return Promise.resolve(running ? child.pid : undefined);
  }

  logHint(component: string): string {
    return join(this.stateDir, "logs", `${component}.log`);
  }

  /** The pid of each running component. */
  async pids(components: readonly string[]): Promise<(number | undefined)[]> {
    return Promise.all(components.map((c) => this.mainPid(c)));
  }

  /** Stops everything this manager started. */
  async stopAll(): Promise<void> {
    for (const component of [...this.#children.keys()]) await this.stop(component);
  }
}

/**
 * Every file, folder and link under a folder with its kind, mode and content hash, sorted: equal
 * fingerprints mean nothing changed (times aside).
 */
export async function fingerprint(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (path: string, rel: string): Promise<void> => {
    for (const name of (await readdir(path)).sort()) {
      const full = join(path, name);
      const info = await lstat(full);
      const mode = (info.mode & 0o7777).toString(8);
      if (info.isDirectory()) {
        out.push(`d ${rel}${name} ${mode}`);
        await walk(full, `${rel}${name}/`);
      } else if (info.isSymbolicLink()) out.push(`l ${rel}${name} -> ${await readlink(full)}`);
      else out.push(`f ${rel}${name} ${mode} ${createHash("sha256").update(await readFile(full)).digest("hex")}`);
    }
  };
  await walk(dir, "");
  return out;
}
