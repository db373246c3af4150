// The build (tooling/bundle): the CLI and its components as plain JavaScript, run with no
// TypeScript loader, as an installed box runs them and as `coyote up` runs its components.
import assert from "node:assert/strict";
import { fork, spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { freePorts, stopChild, waitFor } from "@coyote/testing";
import { SNITCH_PROXY_NODE_FLAGS } from "@coyote/snitch-proxy";
import { builtEntry, childCommand, COMPONENT_NODE_FLAGS, nodeFlagsFor } from "./commands/up.ts";
import { readEnv } from "./env.ts";
import { HOME } from "./test/support.ts";

/** The pids of a process's children, from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${String(pid)}/task`).catch(() => []);
  const lists = await Promise.all(tasks.map((task) => readFile(`/proc/${String(pid)}/task/${task}/children`, "utf8").catch(() => "")));
  return lists.flatMap((list) => list.trim().split(/\s+/).filter((word) => word !== "").map(Number));
}

const commandLine = async (pid: number) => (await readFile(`/proc/${String(pid)}/cmdline`, "utf8").catch(() => "")).split("\0").filter((arg) => arg !== "");

/** A plain HTTP GET to snitch-proxy's redirect port on loopback. */
function redirect(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = get({ host: "127.0.0.1", port, path: "/", headers: { host: "box.test" }, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.once("timeout", () => request.destroy(new Error("timed out")));
    request.once("error", reject);
  });
}

/** The environment of a built process: no loader from this test run's own. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
}

describe("the build", () => {
  // Built inside the checkout (test-output/ is ignored), so that the bundle finds node_modules as dist/ does.
  let root: string;
  let dist: string;
  let stateDir: string;
  const started: ChildProcess[] = [];

  before(async () => {
    await mkdir(join(HOME, "test-output"), { recursive: true });
    root = await mkdtemp(join(HOME, "test-output", "bundle-"));
    dist = join(root, "dist");
    const { bundle } = (await import(pathToFileURL(join(HOME, "tooling", "bundle", "index.js")).href)) as { bundle: (outdir: string) => Promise<string[]> };
    await bundle(dist);
  });
  after(async () => {
    for (const child of started) await stopChild(child);
    await rm(root, { recursive: true, force: true });
  });

  it("runs a component with `node dist/coyote.mjs run <name>` and no TypeScript loader, and stops it cleanly", async () => {
    stateDir = await mkdtemp(join(tmpdir(), "coyote-built-"));
    const [https, http] = await freePorts(2);
    assert.ok(https !== undefined && http !== undefined);
    await mkdir(join(stateDir, "proxy"), { recursive: true });
    await writeFile(join(stateDir, "proxy", "routes.json"), JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), listen: { host: "127.0.0.1", https, http }, routes: [] }));
    const child = spawn(process.execPath, [join(dist, "coyote.mjs"), "run", "snitch-proxy"], { env: childEnv({ COYOTE_STATE: stateDir }), stdio: ["ignore", "ignore", "pipe"] });
    started.push(child);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      assert.equal(await waitFor("snitch-proxy's redirect on its plain port", () => redirect(http).catch(() => undefined), { timeoutMs: 20_000 }), 308);
      assert.ok(child.pid !== undefined);
      const args = await commandLine(child.pid);
      assert.ok(!args.some((arg) => arg.includes("tsx") || arg.endsWith(".ts")), `no loader, no TypeScript: ${args.join(" ")}`);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0, `a clean stop; stderr: ${stderr}`);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it("has snitch-proxy's worker as an entry of its own, which a cluster of more than one worker forks", async () => {
    const workerState = await mkdtemp(join(tmpdir(), "coyote-built-worker-"));
    const worker = fork(join(dist, "snitch-proxy-worker.mjs"), [], { env: childEnv({}), stdio: ["ignore", "ignore", "pipe", "ipc"], serialization: "advanced" });
    started.push(worker);
    try {
      const answer = await new Promise<{ type: string; https?: { port: number } }>((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("exit", (code) => reject(new Error(`the worker exited (${String(code)})`)));
        worker.send({ type: "start", share: 1, options: { stateDir: workerState, logFile: join(workerState, "worker.log"), https: { host: "127.0.0.1", port: 0 } } });
      });
      assert.equal(answer.type, "ready");
      assert.ok((answer.https?.port ?? 0) > 0, "listening");
      const exited = new Promise<number | null>((resolve) => worker.once("exit", (code) => resolve(code)));
      worker.send({ type: "stop", graceMs: 100 });
      assert.equal(await exited, 0);
    } finally {
      await rm(workerState, { recursive: true, force: true });
    }
  });

  it("coyote up from the build runs every component's process from the build's component.mjs", async () => {
    stateDir = await mkdtemp(join(tmpdir(), "coyote-built-up-"));
    // COYOTE_HOME names the folder that holds this bundle's dist/ (the crm's built app stays in the checkout).
    const up = spawn(process.execPath, [join(dist, "coyote.mjs"), "up", "--no-build", "--no-install"], { env: childEnv({ COYOTE_STATE: stateDir, COYOTE_HOME: root }), stdio: ["ignore", "pipe", "pipe"], detached: true });
    started.push(up);
    let stderr = "";
    up.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      assert.ok(up.pid !== undefined);
      const upPid = up.pid;
      // A child just forked shows its parent's command line until it has run its own program.
      const lines = await waitFor("four component processes", async () => {
        const found = await Promise.all((await childrenOf(upPid)).map(commandLine));
        return found.length >= 4 && !found.some((args) => args.includes("up")) ? found : undefined;
      }, { timeoutMs: 30_000 });
      for (const args of lines) {
        assert.deepEqual(args.slice(1, -1), [...nodeFlagsFor(args.at(-1) ?? ""), join(dist, "component.mjs")], `built, with its component's flags: ${args.join(" ")}`);
      }
      assert.deepEqual(nodeFlagsFor("coyote-crm"), COMPONENT_NODE_FLAGS);
      assert.deepEqual(nodeFlagsFor("snitch-proxy"), SNITCH_PROXY_NODE_FLAGS);
      assert.deepEqual(lines.map((args) => args.at(-1)).sort(), ["coyote-crm", "docker-activator", "minion", "snitch-proxy"]);
      assert.match(stderr, /components run from the build, dist\/component\.mjs/);
    } finally {
      await stopChild(up, 20_000);
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe("the command coyote up runs its components with", () => {
  it("is the build's when there is one, the sources' through tsx only when there is none and the build was skipped or when asked", async () => {
    const home = await mkdtemp(join(tmpdir(), "coyote-home-"));
    try {
      const env = readEnv({ COYOTE_HOME: home, COYOTE_STATE: join(home, ".coyote") }, false);
      const cliEntry = join(home, "packages", "cli", "src", "main.ts");
      const loader = ["--import", "tsx-loader.mjs"];
      assert.deepEqual(await childCommand(env, cliEntry, { built: false, execArgv: loader }), { command: process.execPath, args: [...loader, cliEntry, "run"], from: "sources" });
      await assert.rejects(childCommand(env, cliEntry, { built: true }), /the build left no .*component\.mjs/);
      await mkdir(join(home, "dist"));
      await writeFile(builtEntry(home), "");
      assert.deepEqual(await childCommand(env, cliEntry, { built: true }), { command: process.execPath, args: [builtEntry(home)], from: "built" });
      assert.deepEqual(await childCommand(env, cliEntry, { built: false }), { command: process.execPath, args: [builtEntry(home)], from: "built" });
      assert.equal((await childCommand(env, cliEntry, { built: false, fromSources: true, execArgv: loader })).from, "sources");
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("finds the checkout from the bundle's dist/ as from the sources", async () => {
    const { homeOf } = await import("./env.ts");
    assert.equal(homeOf("/opt/coyote/releases/1/dist"), "/opt/coyote/releases/1");
    assert.equal(homeOf("/opt/coyote/releases/1/packages/cli/src"), "/opt/coyote/releases/1");
  });
});
