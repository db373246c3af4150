// bench/proxy: load against three TLS reverse proxies on loopback — snitch-proxy, nginx and Caddy —
// all forwarding to the same backend (an nginx answering a small fixed body) with the same
// certificate (ECDSA P-256 from the local CA), access logs off. Two protocols: HTTP/1.1 keep-alive
// with wrk, and HTTP/2 (what browsers use) with h2load. With `--baseline REF` an earlier commit's
// snitch-proxy runs too, so that the cost of a change is measured in the same run.
//
// The targets are interleaved in one run (round 1: snitch, [baseline], nginx, caddy over each
// protocol; round 2: ...), each run preceded by a short warm-up. Prints per protocol and proxy the
// median requests/s and p99 latency, the CPU each process used, and the ratios.
//
//   node --import tsx bench/src/proxy.ts [--rounds 3] [--duration 10] [--connections 64] [--threads 2] [--warmup 2]
//                                        [--protocol both|h1|h2] [--streams 10] [--workers 1]
//                                        [--cluster] [--other-workers N]
//                                        [--baseline REF] [--snitch-cpu-prof DIR] [--probe]
//                                        [--snitch-node-flags "..."] [--baseline-node-flags "..."] [--think MS]
//
// Every daemon runs from a temporary folder (its configuration, pid, logs and temp files), talks
// only on 127.0.0.1, and is stopped by its pid; the folder is removed at the end, on failure, on
// SIGINT and when the time budget runs out. Set BENCH_KEEP=1 to keep the folder (daemon logs).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { availableParallelism, cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePorts } from "@coyote/testing";
import { unpackBaseline } from "./lib/baseline.ts";
import { H2LOAD, runH2load, runWrk, WRK, type LoadResult, type LoadSpec, type Watched } from "./lib/load.ts";
import { benchSetup, CADDY, NGINX, startBackend, startCaddy, startNginxProxy, startSnitch } from "./lib/peers.ts";
import type { ProbeReport } from "./lib/probe.ts";
import { descendants, stopDaemon, type Daemon } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    threads: { type: "string", default: "2" },
    warmup: { type: "string", default: "2" },
    protocol: { type: "string", default: "both" },
    // HTTP/2 streams in flight per connection.
    streams: { type: "string", default: "10" },
    // snitch-proxy processes: 1 is the library form (startProxy), more its cluster (what coyote up runs, one per core).
    workers: { type: "string", default: "1" },
    // Runs snitch-proxy as its cluster (a parent and its workers, what `coyote up` runs) even with one worker.
    cluster: { type: "boolean", default: false },
    // A second snitch-proxy of this tree with another number of workers, to compare the two in one run.
    "other-workers": { type: "string" },
    // An earlier commit whose snitch-proxy runs beside this tree's.
    baseline: { type: "string" },
    // A folder for a CPU profile of snitch-proxy (node --cpu-prof), written when it stops.
    "snitch-cpu-prof": { type: "string" },
    // Loads lib/probe.ts into every snitch-proxy process and prints, per run and worker, its
    // connections, CPU, event-loop delay and garbage-collection pauses.
    probe: { type: "boolean", default: false },
    // HTTP/1.1: milliseconds each wrk connection waits between an answer and its next request, to
    // compare latencies at one offered load that every proxy can carry (0: as fast as it answers).
    think: { type: "string", default: "0" },
    // Node flags for this tree's snitch-proxy and the baseline's (the workers inherit them), to
    // compare V8 settings in one interleaved run: "--max-semi-space-size=32".
    "snitch-node-flags": { type: "string" },
    "baseline-node-flags": { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const THREADS = Number(values.threads);
const WARMUP = Number(values.warmup);
const STREAMS = Number(values.streams);
const THINK = Number(values.think);
if (!Number.isInteger(THINK) || THINK < 0) throw new Error("bench/proxy: --think must be an integer ≥ 0 (milliseconds)");
for (const [name, n] of Object.entries({ rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, threads: THREADS, streams: STREAMS })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench/proxy: --${name} must be a positive integer`);
}
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error("bench/proxy: --warmup must be an integer ≥ 0");
type Protocol = "h1" | "h2";
const PROTOCOLS: readonly Protocol[] = values.protocol === "both" ? ["h1", "h2"] : values.protocol === "h1" || values.protocol === "h2" ? [values.protocol] : [];
if (PROTOCOLS.length === 0) throw new Error(`bench/proxy: --protocol ${values.protocol}: expected both, h1 or h2`);

const BODY = "hello from the backend\n";
// The site name: in the certificate, SNI and Host. Not "localhost": a route's host must be a
// dotted domain name (@coyote/spec DomainName). A name under .localhost (RFC 6761) is never sent
// to a resolver here: the load tools and the readiness check connect to 127.0.0.1 directly.
const HOST = "bench.localhost";
const READY_TIMEOUT_MS = 30_000;
const OTHER_WORKERS = values["other-workers"];
if (OTHER_WORKERS !== undefined && !/^[1-9]\d?$/.test(OTHER_WORKERS)) throw new Error("bench/proxy: --other-workers must be a whole number from 1 to 99");
const TARGET_COUNT = 3 + (values.baseline === undefined ? 0 : 1) + (OTHER_WORKERS === undefined ? 0 : 1);
// Setup (a baseline is unpacked) and teardown, plus every run with a few seconds of slack each.
const BUDGET_MS = 180_000 + ROUNDS * PROTOCOLS.length * TARGET_COUNT * (WARMUP + DURATION + 5) * 1000;

const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function versionOf(command: string, args: readonly string[]): string {
  // nginx -v writes to standard error; wrk -v exits 1 after printing.
  const { stdout, stderr } = spawnSync(command, args, { encoding: "utf8", timeout: 5000 });
  return `${stdout}${stderr}`.trim().split("\n")[0] ?? "?";
}

/** One GET, answering the status and body; rejects on a network error or after `timeoutMs`. */
function get(port: number, tls: { ca: string } | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port, path: "/", headers: { host: HOST }, agent: false as const, timeout: timeoutMs };
    const req = tls ? httpsRequest({ ...options, servername: HOST, ca: tls.ca }) : httpRequest(options);
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Waits until a daemon answers the backend's body through its port (the TLS ones with the bench
 * CA trusted and the site name as SNI, so the certificate chain is checked too).
 */
async function waitServing(daemon: Daemon, port: number, tls: { ca: string } | undefined, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (daemon.hasExited()) throw new Error(`${daemon.name} exited before serving (${String(await daemon.exited)}); see ${logFile}`);
    try {
      const answer = await get(port, tls, 2000);
      if (answer.status === 200 && answer.body === BODY) return;
      last = `status ${answer.status}, body ${JSON.stringify(answer.body.slice(0, 80))}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${daemon.name} did not serve the backend's answer on port ${port} within ${READY_TIMEOUT_MS} ms (${last}); see ${logFile}`);
}

const flagsOf = (text: string | undefined): string[] => (text ?? "").split(" ").filter((flag) => flag !== "");

/** The processes of a daemon that run the probe (the others could die of SIGUSR2). */
function probedPids(daemon: Daemon): number[] {
  return [daemon.pid, ...descendants(daemon.pid)].filter((pid) => {
    try {
      return readFileSync(`/proc/${String(pid)}/cmdline`, "utf8").includes("probe.ts");
    } catch {
      return false;
    }
  });
}

/**
 * The probe's last report of each process, one line per process that served connections, and the
 * bytes those processes allocated in all.
 */
function probeLines(dir: string, pids: readonly number[]): { lines: string[]; allocatedBytes: number } {
  const lines: string[] = [];
  let allocatedBytes = 0;
  for (const pid of pids) {
    let text: string;
    try {
      text = readFileSync(join(dir, `probe-${String(pid)}.jsonl`), "utf8");
    } catch {
      continue;
    }
    const last = text.trim().split("\n").pop();
    if (last === undefined || last === "") continue;
    const r = JSON.parse(last) as ProbeReport;
    if (r.open === 0) continue;
    allocatedBytes += r.allocatedBytes;
    const g = (k: keyof ProbeReport["gc"]) => `${String(r.gc[k].count)}×/${r.gc[k].totalMs.toFixed(0)} ms/max ${r.gc[k].maxMs.toFixed(2)}`;
    lines.push(`    pid ${String(pid)}: ${String(r.open)} connections, cpu ${r.cpu.toFixed(2)}, elu ${r.elu.toFixed(2)}, loop delay p50 ${r.delayMs.p50.toFixed(2)} p99 ${r.delayMs.p99.toFixed(2)} max ${r.delayMs.max.toFixed(2)} ms; gc minor ${g("minor")}, major ${g("major")}, incremental ${g("incremental")}, allocated ${(r.allocatedBytes / 1e6).toFixed(1)} MB`);
  }
  return { lines, allocatedBytes };
}

/** Every process of a daemon: the one started and its children (nginx's workers). */
function treeOf(label: string, daemon: Daemon): Watched[] {
  const pids = [daemon.pid, ...descendants(daemon.pid)];
  return pids.map((pid, i) => ({ label: pids.length === 1 ? label : `${label}#${i}`, pid }));
}

// ---------------------------------------------------------------------------------------------

const workDir = mkdtempSync(join(tmpdir(), "coyote-bench-proxy-"));
const daemons: Daemon[] = [];
let cleaning: Promise<void> | undefined;
const cleanup = (): Promise<void> => {
  cleaning ??= (async () => {
    await Promise.all(daemons.map((d) => stopDaemon(d)));
    if (process.env.BENCH_KEEP === undefined) rmSync(workDir, { recursive: true, force: true });
    else out(`work folder kept in ${workDir}`);
  })();
  return cleaning;
};
const abort = (why: string, code: number) => {
  process.stderr.write(`bench/proxy: ${why}; stopping the daemons\n`);
  void cleanup().finally(() => process.exit(code));
};
process.once("SIGINT", () => abort("interrupted", 130));
process.once("SIGTERM", () => abort("terminated", 143));
const budget = setTimeout(() => abort(`time budget of ${Math.round(BUDGET_MS / 1000)} s used up`, 1), BUDGET_MS);
budget.unref();
/** Lists a load tool's daemon while it runs, so that an interrupt stops it too. */
const track = (daemon: Daemon) => {
  daemons.push(daemon);
  void daemon.exited.then(() => {
    const i = daemons.indexOf(daemon);
    if (i >= 0) daemons.splice(i, 1);
  });
};

try {
  const tools = [NGINX, CADDY, ...(PROTOCOLS.includes("h1") ? [WRK] : []), ...(PROTOCOLS.includes("h2") ? [H2LOAD] : [])];
  for (const binary of tools) {
    try {
      execFileSync("test", ["-x", binary]);
    } catch {
      throw new Error(`bench/proxy: ${binary} is missing (Debian packages wrk, nghttp2-client, nginx, caddy)`);
    }
  }
  const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));
  const baseline = values.baseline === undefined ? undefined : (() => {
    const root = join(workDir, "baseline-tree");
    const commit = unpackBaseline(dirname(benchDir), values.baseline, root);
    return { commit, benchDir: join(root, "bench") };
  })();

  const cpuList = cpus();
  out(`machine: ${availableParallelism()} cores (${cpuList[0]?.model ?? "?"}), Linux ${release()}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  out(`versions: Node ${process.version}, ${versionOf(NGINX, ["-v"])}, Caddy ${versionOf(CADDY, ["version"]).split(" ")[0] ?? "?"}, ${versionOf(WRK, ["-v"]).split(" [")[0] ?? "wrk"}, ${versionOf(H2LOAD, ["--version"])}`);
  out(`run: ${ROUNDS} rounds × ${PROTOCOLS.join("+")} × (snitch${OTHER_WORKERS === undefined ? "" : `, snitch with ${OTHER_WORKERS} workers`}${baseline ? `, snitch@${baseline.commit}` : ""}, nginx, caddy)${values.cluster ? ", snitch-proxy as its cluster" : ""}, ${WARMUP} s warm-up + ${DURATION} s each, ${CONNECTIONS} connections, ${THREADS} threads, ${STREAMS} HTTP/2 streams per connection${THINK > 0 ? `, wrk waits ${String(THINK)} ms between an answer and the next request` : ""}`);

  // The one certificate every proxy serves.
  const { setup, caPem } = await benchSetup(workDir, HOST, daemons);
  const trust = { ca: caPem };

  const [backendPort = 0, nginxPort = 0, caddyPort = 0, snitchPort = 0, basePort = 0, otherPort = 0] = await freePorts(6);
  const backend = startBackend(setup, backendPort, BODY);
  await waitServing(backend.daemon, backendPort, undefined, backend.errorLog);
  const nginx = startNginxProxy(setup, nginxPort, backendPort);
  await waitServing(nginx.daemon, nginxPort, trust, nginx.errorLog);
  const caddy = startCaddy(setup, caddyPort, backendPort);
  await waitServing(caddy.daemon, caddyPort, trust, caddy.errorLog);
  const probeDir = (name: string) => (values.probe ? join(workDir, `probe-${name}`) : undefined);
  const snitch = startSnitch(setup, { name: "snitch", benchDir, port: snitchPort, backendPort, workers: values.workers, cluster: values.cluster, profileDir: values["snitch-cpu-prof"], nodeFlags: flagsOf(values["snitch-node-flags"]), probeDir: probeDir("snitch") });
  await waitServing(snitch.daemon, snitchPort, trust, snitch.errorLog);
  const base = baseline ? { ...startSnitch(setup, { name: "baseline", benchDir: baseline.benchDir, port: basePort, backendPort, workers: values.workers, cluster: values.cluster, nodeFlags: flagsOf(values["baseline-node-flags"]), probeDir: probeDir("baseline") }), commit: baseline.commit } : undefined;
  if (base) await waitServing(base.daemon, basePort, trust, base.errorLog);
  const other = OTHER_WORKERS === undefined ? undefined : startSnitch(setup, { name: "other", benchDir, port: otherPort, backendPort, workers: OTHER_WORKERS, cluster: values.cluster, nodeFlags: flagsOf(values["snitch-node-flags"]), probeDir: probeDir("other") });
  if (other) await waitServing(other.daemon, otherPort, trust, other.errorLog);

  interface Target {
    readonly name: string;
    readonly label: string;
    readonly port: number;
    readonly watch: () => Watched[];
    /** A snitch-proxy run with the probe: its daemon and the probe's folder. */
    readonly probe?: { readonly daemon: Daemon; readonly dir: string };
  }
  const backendTree = () => treeOf("backend", backend.daemon);
  const snitchWatch = (daemon: Daemon) => () => [...treeOf("proxy", daemon), { label: "proxy main thread", pid: daemon.pid, tid: daemon.pid }, ...backendTree()];
  const targets: Target[] = [
    // The main thread is where snitch-proxy's JavaScript runs: it shows whether one core is the limit.
    { name: "snitch", label: OTHER_WORKERS === undefined ? "snitch-proxy" : `snitch-proxy, ${values.workers} workers`, port: snitchPort, watch: snitchWatch(snitch.daemon), ...(values.probe ? { probe: { daemon: snitch.daemon, dir: probeDir("snitch") ?? "" } } : {}) },
    ...(other ? [{ name: "other", label: `snitch-proxy, ${String(OTHER_WORKERS)} workers`, port: otherPort, watch: snitchWatch(other.daemon), ...(values.probe ? { probe: { daemon: other.daemon, dir: probeDir("other") ?? "" } } : {}) }] : []),
    ...(base ? [{ name: "base", label: `snitch-proxy @${base.commit}`, port: basePort, watch: snitchWatch(base.daemon), ...(values.probe ? { probe: { daemon: base.daemon, dir: probeDir("baseline") ?? "" } } : {}) }] : []),
    { name: "nginx", label: "nginx", port: nginxPort, watch: () => [...treeOf("proxy", nginx.daemon), ...backendTree()] },
    { name: "caddy", label: "Caddy", port: caddyPort, watch: () => [...treeOf("proxy", caddy.daemon), ...backendTree()] },
  ];
  type Run = { result: LoadResult; cpu: Map<string, number> };
  const results = new Map<string, Run[]>();
  /** With --probe: bytes allocated per request, per protocol and target, one figure per round. */
  const allocations = new Map<string, number[]>();
  const load = (protocol: Protocol, port: number, seconds: number, watch?: () => Watched[], window?: LoadSpec["window"]) => {
    const spec: LoadSpec = { host: HOST, port, seconds, connections: CONNECTIONS, threads: THREADS, streams: STREAMS, warmupSeconds: protocol === "h2" ? WARMUP : 0, logFile: join(workDir, `${protocol}.log`), scratch: join(workDir, `${protocol}.scratch`), thinkMs: THINK, ...(window ? { window } : {}) };
    return protocol === "h1" ? runWrk(spec, track, watch) : runH2load(spec, track, watch);
  };

  out("");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const protocol of PROTOCOLS) {
      for (const target of targets) {
        // h2load warms up inside the measured run (LoadSpec.warmupSeconds).
        if (WARMUP > 0 && protocol === "h1") await load(protocol, target.port, WARMUP);
        // The probe counts the steady part of the run only: SIGUSR2 at its start and at its end.
        const probed = target.probe ? probedPids(target.probe.daemon) : [];
        const signal = () => {
          for (const pid of probed) process.kill(pid, "SIGUSR2");
        };
        const run = await load(protocol, target.port, DURATION, target.watch, target.probe ? { begin: signal, end: signal } : undefined);
        const key = `${protocol}:${target.name}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        const r = run.result;
        out(`round ${round} ${protocol} ${target.name.padEnd(6)} ${(r.requests / r.seconds).toFixed(0).padStart(7)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  errors ${r.errors}  cpu ${[...run.cpu].map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
        if (target.probe) {
          // The reports are written from the processes' event loops, just after the signal.
          await sleep(300);
          const probe = probeLines(target.probe.dir, probed);
          for (const line of probe.lines) out(line);
          const perRequest = probe.allocatedBytes / Math.max(1, r.requests);
          allocations.set(key, [...(allocations.get(key) ?? []), perRequest]);
          out(`    young-generation allocation: ${perRequest.toFixed(0)} bytes per request`);
        }
      }
    }
  }

  for (const protocol of PROTOCOLS) {
    const summary = targets.map((t) => {
      const runs = results.get(`${protocol}:${t.name}`) ?? [];
      const cpuOf = (select: (label: string) => boolean) => median(runs.map((run) => [...run.cpu].filter(([label]) => select(label)).reduce((sum, [, v]) => sum + v, 0)));
      return {
        ...t,
        rps: median(runs.map((run) => run.result.requests / run.result.seconds)),
        p99: median(runs.map((run) => run.result.p99Ms)),
        errors: runs.reduce((sum, run) => sum + run.result.errors, 0),
        cpuProxy: cpuOf((l) => l === "proxy" || l.startsWith("proxy#")),
        cpuProcesses: runs[0] ? [...runs[0].cpu.keys()].filter((l) => l.startsWith("proxy#")).length || 1 : 1,
        cpuMain: cpuOf((l) => l === "proxy main thread"),
        cpuBackend: cpuOf((l) => l.startsWith("backend")),
        cpuLoad: cpuOf((l) => l === "wrk" || l === "h2load"),
      };
    });
    const by = (name: string) => summary.find((s) => s.name === name);
    const s = by("snitch");
    const b = by("base");
    const o = by("other");
    const n = by("nginx");
    const c = by("caddy");
    out("");
    out(protocol === "h1" ? "HTTP/1.1 (wrk)" : `HTTP/2 (h2load, ${STREAMS} streams per connection)`);
    out(`| proxy (median of ${ROUNDS} × ${DURATION} s, ${CONNECTIONS} connections) | req/s | p99 latency | errors | CPU proxy (cores) | CPU backend | CPU load tool |`);
    out("|---|---|---|---|---|---|---|");
    for (const row of summary) {
      const proxyCpu = row.cpuMain > 0 ? `${row.cpuProxy.toFixed(2)} (main thread ${row.cpuMain.toFixed(2)})` : `${row.cpuProxy.toFixed(2)} (${row.cpuProcesses} ${row.cpuProcesses === 1 ? "process" : "processes"})`;
      out(`| ${row.label} | ${Math.round(row.rps).toLocaleString("en")} | ${row.p99.toFixed(2)} ms | ${row.errors} | ${proxyCpu} | ${row.cpuBackend.toFixed(2)} | ${row.cpuLoad.toFixed(2)} |`);
    }
    out("");
    if (s && n && c) {
      out(`ratios ${protocol} (req/s): snitch/nginx ${(s.rps / n.rps).toFixed(2)}×, snitch/Caddy ${(s.rps / c.rps).toFixed(2)}×; p99: snitch/nginx ${(s.p99 / n.p99).toFixed(2)}×, snitch/Caddy ${(s.p99 / c.p99).toFixed(2)}×`);
    }
    for (const t of targets) {
      const perRequest = allocations.get(`${protocol}:${t.name}`);
      if (perRequest !== undefined) out(`allocated per request (${protocol}), ${t.label}: median ${median(perRequest).toFixed(0)} bytes (rounds ${perRequest.map((b) => b.toFixed(0)).join(", ")})`);
    }
    if (o && n) {
      out(`snitch-proxy with ${String(OTHER_WORKERS)} workers (${protocol}): ${(o.rps / n.rps).toFixed(2)}× nginx's req/s, p99 ${(o.p99 / n.p99).toFixed(2)}× nginx's; against the first snitch-proxy: req/s ${s ? (o.rps / s.rps).toFixed(2) : "?"}×, p99 ${s ? (o.p99 / s.p99).toFixed(2) : "?"}×`);
    }
    if (s && b) {
      // Each round's pair ran back to back, so a round's ratio is the steadier figure when the
      // machine's speed drifts: their median is given beside the ratio of the medians.
      const own = results.get(`${protocol}:snitch`) ?? [];
      const theirs = results.get(`${protocol}:base`) ?? [];
      const paired = own.map((run, i) => {
        const other = theirs[i];
        return other ? run.result.requests / run.result.seconds / (other.result.requests / other.result.seconds) : 1;
      });
      out(`against ${b.label} (${protocol}): req/s ${(s.rps / b.rps).toFixed(3)}× (median of the rounds' own ratios ${median(paired).toFixed(3)}×: ${paired.map((r) => r.toFixed(2)).join(", ")}), p99 ${(s.p99 / b.p99).toFixed(2)}×`);
    }
  }
  out("");
  out(`CPU is in cores (1.00 = one core busy), sampled over each run but its first and last second; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  for (const proxy of [snitch, ...(base ? [base] : []), ...(other ? [other] : [])]) {
    const log = join(proxy.stateDir, "proxy.log");
    const logged = (() => {
      try {
        return readFileSync(log, "utf8").split("\n").filter((l) => l.includes('"level":50') || l.includes('"level":40')).length;
      } catch {
        return 0;
      }
    })();
    if (logged > 0) out(`note: ${proxy.daemon.name} logged ${logged} warnings or errors during the run (BENCH_KEEP=1 keeps ${log})`);
  }
} finally {
  clearTimeout(budget);
  await cleanup();
}
