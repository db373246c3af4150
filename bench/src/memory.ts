// bench/memory: what the whole appliance holds in memory when idle. Starts it as `coyote up
// --no-build` does, on a fresh state folder whose server spec gives it free loopback ports, waits
// until its processes have been idle for a while, and prints the PSS and RSS (from
// /proc/PID/smaps_rollup) of every Coyote process and, apart, of every third-party daemon it runs;
// the floor is a bare `node -e 'setInterval(()=>{},1000)'` measured in the same run.
//
//   node --import tsx bench/src/memory.ts [--from built|sources] [--idle-seconds 10] [--idle-cpu 5] [--timeout-seconds 180] [--keep]
//
// `--from built` (the default) runs the supervisor and the components from `dist/coyote.mjs`
// (`npm run build` makes it), as an installed box does; `--from sources` runs them all from the
// TypeScript sources through tsx, as `./coyote up --no-build --from-sources` does. Daemons are not
// installed (--no-install). Everything is stopped by pid and process group.
import { spawn } from "node:child_process";
import { mkdtemp, open, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ServerSpec, StateStore, specPath } from "@coyote/spec";
import { stopAppliance, stopPid, writeLoopbackServer } from "@coyote/testing";
import { cpuSeconds, descendants } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    from: { type: "string", default: "built" },
    "idle-seconds": { type: "string", default: "10" },
    "idle-cpu": { type: "string", default: "5" },
    "timeout-seconds": { type: "string", default: "180" },
    keep: { type: "boolean", default: false },
  },
});
const from = values.from;
if (from !== "built" && from !== "sources") {
  process.stderr.write(`bench/memory: --from is built or sources, not ${JSON.stringify(from)}\n`);
  process.exit(2);
}
const idleSeconds = Number(values["idle-seconds"]);
const idleCpu = Number(values["idle-cpu"]) / 100;
const timeoutMs = Number(values["timeout-seconds"]) * 1000;
if (!(idleSeconds > 0) || !(timeoutMs > 0) || !(idleCpu > 0)) {
  process.stderr.write("bench/memory: --idle-seconds, --idle-cpu and --timeout-seconds are positive numbers\n");
  process.exit(2);
}
const repo = resolve(import.meta.dirname, "..", "..");
const out = (line: string) => process.stdout.write(`${line}\n`);
// The appliance gets this run's environment without Node switches meant for this process (a loader).
const childEnvironment = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.NODE_OPTIONS;
  return env;
};

/** PSS and RSS of one process in kB, from /proc/PID/smaps_rollup; undefined when it is gone. */
async function memoryOf(pid: number): Promise<{ pss: number; rss: number } | undefined> {
  const text = await readFile(`/proc/${String(pid)}/smaps_rollup`, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  return { pss: field("Pss"), rss: field("Rss") };
}

/** A process's command line, its arguments apart. */
async function commandOf(pid: number): Promise<string[]> {
  const text = await readFile(`/proc/${String(pid)}/cmdline`, "utf8").catch(() => "");
  return text.split("\0").filter((arg) => arg !== "");
}

/** What a process of the appliance is: a Coyote process (Node) by its role, or a daemon by its program. */
function roleOf(command: readonly string[], upPid: number, pid: number): { coyote: boolean; name: string } {
  const program = command[0] ?? "?";
  if (pid === upPid) return { coyote: true, name: "supervisor (coyote up)" };
  if (program === process.execPath || program.endsWith("/node")) {
    // `dist/component.mjs <name>` from the build, `main.ts run <name>` from the sources.
    const entry = command.findIndex((arg) => arg.endsWith("component.mjs") || arg === "run");
    if (entry !== -1 && command[entry + 1] !== undefined) return { coyote: true, name: command[entry + 1] ?? "?" };
    if (command.some((arg) => arg.includes("worker"))) return { coyote: true, name: "snitch-proxy worker" };
    return { coyote: true, name: command.slice(1).join(" ").slice(0, 60) };
  }
  const name = program.split("/").pop() ?? program;
  // tsx compiles through an esbuild service process: from the sources, that is Coyote's too.
  if (name === "esbuild") return { coyote: true, name: "esbuild (tsx's compiler)" };
  return { coyote: false, name };
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

const stateDir = await mkdtemp(join(tmpdir(), "coyote-memory-"));
const entry = from === "built" ? join(repo, "dist", "coyote.mjs") : join(repo, "packages", "cli", "src", "main.ts");
if (from === "built" && !(await stat(entry).then((s) => s.isFile(), () => false))) {
  process.stderr.write(`bench/memory: no ${entry}; run npm run build first\n`);
  process.exit(2);
}
const args = from === "built" ? [entry, "up", "--no-build", "--no-install"] : ["--import", join(repo, "node_modules", "tsx", "dist", "loader.mjs"), entry, "up", "--no-build", "--no-install", "--from-sources"];
// An activated box with one customer's domain and mailbox, so that the mail, DNS and XMPP daemons
// have their configuration and run, as on a box in use.
const author = { name: "bench", email: "bench@example.org" };
await writeLoopbackServer(stateDir, { name: "Memory bench", hostname: "box.test" }, author, "bench: a fresh box");
const store = await StateStore.open(stateDir);
const server = await store.readJson(specPath("server"), ServerSpec);
if (!server) throw new Error("bench/memory: the server spec was not written");
await store.applySpec({ ...server, activated: true, publicIPv4: "127.0.0.1" }, { author, message: "bench: activated" });
await store.applySpec({
  schemaVersion: 1, kind: "Service", id: "shop", domains: [{ name: "shop.test" }],
  mail: { mailboxes: [{ address: "anna@shop.test", passwordHash: "{SCRAM-SHA-256}4096,c2FsdA==,c3RvcmVk,c2VydmVy" }] },
}, { author, message: "bench: one customer" });
const stdout = join(stateDir, "coyote-up.stdout.log");
const stderr = join(stateDir, "coyote-up.stderr.log");
const outFile = await open(stdout, "w");
const errFile = await open(stderr, "w");
const up = spawn(process.execPath, args, { cwd: repo, env: childEnvironment({ COYOTE_STATE: stateDir, COYOTE_HOME: repo, FORCE_COLOR: "0" }), stdio: ["ignore", outFile.fd, errFile.fd], detached: true });
await outFile.close();
await errFile.close();
const upPid = up.pid;
if (upPid === undefined) throw new Error("bench/memory: could not start coyote up");
up.unref();
const floor = spawn(process.execPath, ["-e", "setInterval(()=>{},1000)"], { stdio: "ignore" });
const floorPid = floor.pid;
if (floorPid === undefined) throw new Error("bench/memory: could not start the bare node process");

try {
  out(`bench/memory: idle is under ${String(idleCpu * 100)}% of a core over ${String(idleSeconds)} s; coyote up (${from === "built" ? "the build, dist/coyote.mjs" : "the TypeScript sources through tsx"}) in ${stateDir}`);
  // Up: the panel answers.
  const deadline = Date.now() + timeoutMs;
  let panel: string | undefined;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`the panel did not answer within ${String(timeoutMs / 1000)} s (see ${stdout} and ${stderr})`);
    if (up.exitCode !== null) throw new Error(`coyote up exited (${String(up.exitCode)}); see ${stderr}`);
    panel ??= /^panel: (http:\/\/\S+\/)\s*$/m.exec(await readFile(stdout, "utf8"))?.[1];
    if (panel !== undefined) {
      const answered = await fetch(panel, { redirect: "manual", signal: AbortSignal.timeout(5000) }).then(async (response) => {
        await response.body?.cancel();
        return true;
      }, () => false);
      if (answered) break;
    }
    await sleep(500);
  }
  // Idle: the whole tree used under `--idle-cpu` percent of a core over `idleSeconds`.
  const treeCpu = () => [upPid, ...descendants(upPid)].reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  for (;;) {
    if (Date.now() > deadline) throw new Error(`the appliance did not go idle within ${String(timeoutMs / 1000)} s`);
    const before = treeCpu();
    await sleep(idleSeconds * 1000);
    const used = treeCpu() - before;
    if (used / idleSeconds < idleCpu) break;
    out(`  not idle yet: ${(used / idleSeconds * 100).toFixed(1)}% of a core over ${String(idleSeconds)} s`);
  }

  const rows: { pid: number; coyote: boolean; name: string; pss: number; rss: number }[] = [];
  for (const pid of [upPid, ...descendants(upPid)]) {
    const memory = await memoryOf(pid);
    if (!memory) continue;
    rows.push({ pid, ...roleOf(await commandOf(pid), upPid, pid), ...memory });
  }
  const floorMemory = await memoryOf(floorPid);
  if (!floorMemory) throw new Error("the bare node process is gone");
  const line = (name: string, pid: string, pss: number, rss: number) => out(`  ${name.padEnd(28)} ${pid.padStart(8)} ${mb(pss).padStart(9)} ${mb(rss).padStart(9)}`);
  out(`  ${"process".padEnd(28)} ${"pid".padStart(8)} ${"PSS MB".padStart(9)} ${"RSS MB".padStart(9)}`);
  out("Coyote:");
  const coyote = rows.filter((row) => row.coyote);
  for (const row of coyote) line(row.name, String(row.pid), row.pss, row.rss);
  const coyotePss = coyote.reduce((sum, row) => sum + row.pss, 0);
  const coyoteRss = coyote.reduce((sum, row) => sum + row.rss, 0);
  line(`total (${String(coyote.length)} processes)`, "", coyotePss, coyoteRss);
  out("third-party daemons:");
  const daemons = rows.filter((row) => !row.coyote);
  for (const row of daemons) line(row.name, String(row.pid), row.pss, row.rss);
  line(`total (${String(daemons.length)} processes)`, "", daemons.reduce((sum, row) => sum + row.pss, 0), daemons.reduce((sum, row) => sum + row.rss, 0));
  out("floor:");
  line("node -e 'setInterval(...)'", String(floorPid), floorMemory.pss, floorMemory.rss);
  out(`Coyote's components: ${mb(coyotePss)} MB PSS (${mb(coyoteRss)} MB RSS) in ${String(coyote.length)} processes, ${(coyotePss / floorMemory.pss).toFixed(1)}x the floor's PSS (${(coyotePss / coyote.length / floorMemory.pss).toFixed(1)}x per process)`);
  // A component that died and was restarted while starting up is measured after its restart: say so.
  const supervisorLog = await readFile(join(stateDir, "logs", "supervisor.log"), "utf8").catch(() => "");
  for (const record of supervisorLog.split("\n").filter((line) => line.includes("COMPONENT_EXITED"))) out(`  restarted: ${record.slice(0, 300)}`);
} finally {
  await stopAppliance(upPid);
  await stopPid(floorPid);
  if (values.keep) out(`state folder kept: ${stateDir}`);
  else await rm(stateDir, { recursive: true, force: true });
}
