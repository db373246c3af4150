// bench/proxy: wrk against three TLS reverse proxies on loopback — snitch-proxy, nginx and Caddy —
// all forwarding to the same backend (an nginx answering a small fixed body) with the same
// certificate (ECDSA P-256 from the local CA), HTTP/1.1 keep-alive, access logs off. The targets
// are interleaved in one run (round 1: snitch, nginx, caddy; round 2: ...), each run preceded by a
// short warm-up. Prints per proxy the median requests/s and p99 latency, the CPU each process used
// during the run, the ratios snitch/nginx and snitch/Caddy, and the issue's goal (snitch ≥ 1.0×
// Caddy and ≥ 0.5× nginx).
//
//   node --import tsx bench/src/proxy.ts [--rounds 3] [--duration 10] [--connections 64] [--threads 2] [--warmup 2]
//                                        [--snitch-cpu-prof DIR]
//
// Every daemon runs from a temporary folder (its configuration, pid, logs and temp files), talks
// only on 127.0.0.1, and is stopped by its pid; the folder is removed at the end, on failure, on
// SIGINT and when the time budget runs out. Set BENCH_KEEP=1 to keep the folder (daemon logs).
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { availableParallelism, cpus, loadavg, release, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LocalCa } from "@coyote/actuator-snickers";
import { freePorts } from "@coyote/testing";
import { cpuSeconds, descendants, startDaemon, stopDaemon, type Daemon } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "64" },
    threads: { type: "string", default: "2" },
    warmup: { type: "string", default: "2" },
    // snitch-proxy processes: 1 is the library form (startProxy), more its cluster (what coyote up runs, one per core).
    workers: { type: "string", default: "1" },
    // A folder for a CPU profile of snitch-proxy (node --cpu-prof), written when it stops.
    "snitch-cpu-prof": { type: "string" },
  },
});
const ROUNDS = Number(values.rounds);
const DURATION = Number(values.duration);
const CONNECTIONS = Number(values.connections);
const THREADS = Number(values.threads);
const WARMUP = Number(values.warmup);
for (const [name, n] of Object.entries({ rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, threads: THREADS })) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench/proxy: --${name} must be a positive integer`);
}
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error("bench/proxy: --warmup must be an integer ≥ 0");

const WRK = "/usr/bin/wrk";
const NGINX = "/usr/sbin/nginx";
const CADDY = "/usr/bin/caddy";
const BODY = "hello from the backend\n";
// The site name: in the certificate, SNI and Host. Not "localhost": a route's host must be a
// dotted domain name (@coyote/spec DomainName). A name under .localhost (RFC 6761) is never sent
// to a resolver here: wrk and the readiness check connect to 127.0.0.1 directly.
const HOST = "bench.localhost";
const READY_TIMEOUT_MS = 30_000;
// Setup and teardown, plus every wrk run with a few seconds of slack each.
const BUDGET_MS = 120_000 + ROUNDS * 3 * (WARMUP + DURATION + 5) * 1000;

const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** A free TCP port on 127.0.0.1 (the kernel's pick; released again before the daemon binds it). */

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

/** Reads the `READY {...}` line proxy-server.ts prints, within the ready timeout. */
function readyLine(daemon: Daemon): Promise<{ port: number }> {
  return new Promise((resolve, reject) => {
    const stdout = daemon.child.stdout;
    if (!stdout) {
      reject(new Error(`${daemon.name}: no standard output to read`));
      return;
    }
    let buffer = "";
    const timer = setTimeout(() => reject(new Error(`${daemon.name} printed no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    stdout.setEncoding("utf8");
    stdout.on("data", (chunk: string) => {
      buffer += chunk;
      const line = buffer.split("\n").find((l) => l.startsWith("READY "));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice("READY ".length)) as { port: number });
      }
    });
    void daemon.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${daemon.name} exited (${String(code)}) before it was ready`));
    });
  });
}

// wrk connects to 127.0.0.1 whatever the URL's host (which it still sends as SNI and Host), and
// prints its figures as one JSON line when done.
const LUA = `
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%.0f,"durationUs":%.0f,"p50Us":%.1f,"p99Us":%.1f,"maxUs":%.1f,"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

interface WrkResult {
  requests: number;
  durationUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

/** A process whose CPU is sampled during a run: a whole tree, or one thread of it. */
interface Watched {
  readonly label: string;
  readonly pid: number;
  readonly tid?: number;
}

function sampleCpu(watched: readonly Watched[]): Map<string, number> {
  const sample = new Map<string, number>();
  for (const w of watched) {
    const seconds = cpuSeconds(w.pid, w.tid);
    if (seconds !== undefined) sample.set(w.label, seconds);
  }
  return sample;
}

/** Every process of a daemon: the one started and its children (nginx's workers). */
function treeOf(label: string, daemon: Daemon): Watched[] {
  const pids = [daemon.pid, ...descendants(daemon.pid)];
  return pids.map((pid, i) => ({ label: pids.length === 1 ? label : `${label}#${i}`, pid }));
}

/**
 * Runs wrk once against a port. When `watch` is given, the CPU of those processes (and of wrk) is
 * sampled from 1 s after the start to 1 s before the end, so the figures cover the steady state.
 */
async function wrk(port: number, seconds: number, script: string, logFile: string, watch?: () => Watched[]): Promise<{ result: WrkResult; cpu: Map<string, number> }> {
  const args = ["-t", String(THREADS), "-c", String(CONNECTIONS), "-d", `${seconds}s`, "--timeout", "5s", "--latency", "-s", script, `https://${HOST}:${port}/`];
  const daemon = startDaemon("wrk", WRK, args, logFile, { stdout: "pipe" });
  // Listed while it runs, so that an interrupt stops it too.
  daemons.push(daemon);
  void daemon.exited.then(() => {
    const i = daemons.indexOf(daemon);
    if (i >= 0) daemons.splice(i, 1);
  });
  let stdout = "";
  daemon.child.stdout?.setEncoding("utf8");
  daemon.child.stdout?.on("data", (chunk: string) => (stdout += chunk));
  const cpu = new Map<string, number>();
  const sampler = (async () => {
    if (!watch) return;
    const margin = seconds >= 3 ? 1000 : 300;
    await sleep(margin);
    const watched = [...watch(), { label: "wrk", pid: daemon.pid }];
    const t0 = performance.now();
    const first = sampleCpu(watched);
    await sleep(seconds * 1000 - 2 * margin);
    const second = sampleCpu(watched);
    const elapsed = (performance.now() - t0) / 1000;
    for (const [label, s] of second) {
      const before = first.get(label);
      if (before !== undefined) cpu.set(label, (s - before) / elapsed);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), (seconds + 20) * 1000)))]);
  clearTimeout(timer);
  if (!finished) {
    await stopDaemon(daemon, 1000);
    throw new Error(`wrk did not finish within ${seconds + 20} s`);
  }
  await sampler;
  writeFileSync(logFile, stdout, { flag: "a" });
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH_JSON "));
  if (line === undefined) throw new Error(`wrk printed no result (exit ${String(await daemon.exited)}); see ${logFile}`);
  return { result: JSON.parse(line.slice("BENCH_JSON ".length)) as WrkResult, cpu };
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

try {
  for (const binary of [WRK, NGINX, CADDY]) {
    try {
      execFileSync("test", ["-x", binary]);
    } catch {
      throw new Error(`bench/proxy: ${binary} is missing (Debian packages wrk, nginx, caddy)`);
    }
  }
  const cpuList = cpus();
  out(`machine: ${availableParallelism()} cores (${cpuList[0]?.model ?? "?"}), Linux ${release()}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  out(`versions: Node ${process.version}, ${versionOf(NGINX, ["-v"])}, Caddy ${versionOf(CADDY, ["version"]).split(" ")[0] ?? "?"}, ${versionOf(WRK, ["-v"]).split(" [")[0] ?? "wrk"}`);
  out(`run: ${ROUNDS} rounds × (snitch, nginx, caddy), ${WARMUP} s warm-up + ${DURATION} s each, ${CONNECTIONS} connections, ${THREADS} wrk threads, HTTP/1.1 keep-alive`);

  // The one certificate every proxy serves.
  const tlsDir = join(workDir, "tls");
  mkdirSync(tlsDir, { mode: 0o700 });
  const ca = await LocalCa.open(join(workDir, "ca"), "bench");
  const issued = ca.issue([HOST]);
  const keyFile = join(tlsDir, "key.pem");
  const chainFile = join(tlsDir, "chain.pem");
  writeFileSync(keyFile, issued.keyPem, { mode: 0o600 });
  writeFileSync(chainFile, issued.chainPem, { mode: 0o644 });
  const trust = { ca: ca.certificatePem };

  const [backendPort = 0, nginxPort = 0, caddyPort = 0, snitchPort = 0] = await freePorts(4);

  // nginx in its own prefix: -e moves even the error log nginx opens before reading its
  // configuration, and every temp path is set so that nothing under /var/lib/nginx is touched.
  // Listeners use reuseport: without it one worker tends to take all of wrk's connections at once
  // and serve them on one core (measured: 0.55 of a core and 7.8k req/s instead of both workers).
  const startNginx = async (name: string, dir: string, http: string, port: number, tls: { ca: string } | undefined) => {
    mkdirSync(join(dir, "tmp"), { recursive: true });
    // nginx's workers (nobody) must reach their temp folders; the key is read by the master.
    chmodSync(workDir, 0o711);
    chmodSync(dir, 0o755);
    const temps = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, "tmp", t)};`).join("\n");
    const conf = `worker_processes auto;
error_log ${join(dir, "error.log")} warn;
pid ${join(dir, "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
${temps}
  # Connections stay open for the whole run (nginx's default closes one every 1000 requests;
  # Node and Caddy set no such limit).
  keepalive_requests 1000000;
  keepalive_timeout 65s;
${http}
}
`;
    writeFileSync(join(dir, "nginx.conf"), conf);
    const logFile = join(dir, "output.log");
    const daemon = startDaemon(name, NGINX, ["-p", `${dir}/`, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf"), "-g", "daemon off;"], logFile);
    daemons.push(daemon);
    await waitServing(daemon, port, tls, join(dir, "error.log"));
    return daemon;
  };

  const backend = await startNginx(
    "backend nginx",
    join(workDir, "backend"),
    `  server {
    listen 127.0.0.1:${backendPort} reuseport;
    location / {
      default_type text/plain;
      return 200 ${JSON.stringify(BODY)};
    }
  }`,
    backendPort,
    undefined,
  );

  const nginx = await startNginx(
    "nginx",
    join(workDir, "nginx"),
    `  upstream backend {
    server 127.0.0.1:${backendPort};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${nginxPort} ssl reuseport;
    server_name ${HOST};
    ssl_certificate ${chainFile};
    ssl_certificate_key ${keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:1m;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }`,
    nginxPort,
    trust,
  );

  // Caddy: JSON (its canonical format). No admin endpoint, no automatic HTTPS (so no ACME), no
  // OCSP stapling fetches, storage and HOME in the work folder, runtime log to a file, no access
  // log (a server logs requests only when it has a "logs" section).
  const caddyDir = join(workDir, "caddy");
  mkdirSync(caddyDir, { recursive: true });
  const caddyConfig = {
    admin: { disabled: true, config: { persist: false } },
    logging: { logs: { default: { level: "WARN", writer: { output: "file", filename: join(caddyDir, "caddy.log") } } } },
    storage: { module: "file_system", root: join(caddyDir, "data") },
    apps: {
      http: {
        servers: {
          bench: {
            listen: [`127.0.0.1:${caddyPort}`],
            protocols: ["h1", "h2"],
            automatic_https: { disable: true },
            tls_connection_policies: [{ match: { sni: [HOST] }, certificate_selection: { any_tag: ["bench"] } }],
            routes: [
              {
                match: [{ host: [HOST] }],
                handle: [
                  {
                    handler: "reverse_proxy",
                    // The same idle keep-alive pool as nginx's "keepalive 64".
                    transport: { protocol: "http", keep_alive: { max_idle_conns_per_host: 64 } },
                    upstreams: [{ dial: `127.0.0.1:${backendPort}` }],
                  },
                ],
                terminal: true,
              },
            ],
          },
        },
      },
      tls: {
        certificates: { load_files: [{ certificate: chainFile, key: keyFile, tags: ["bench"] }] },
        automation: { policies: [{ disable_ocsp_stapling: true }] },
        disable_ocsp_stapling: true,
      },
    },
  };
  writeFileSync(join(caddyDir, "caddy.json"), JSON.stringify(caddyConfig, null, 2));
  const caddyEnv = { PATH: process.env.PATH, HOME: caddyDir, XDG_DATA_HOME: join(caddyDir, "data"), XDG_CONFIG_HOME: join(caddyDir, "config") };
  const caddy = startDaemon("caddy", CADDY, ["run", "--config", join(caddyDir, "caddy.json")], join(caddyDir, "output.log"), { env: caddyEnv, cwd: caddyDir });
  daemons.push(caddy);
  await waitServing(caddy, caddyPort, trust, join(caddyDir, "output.log"));

  // snitch-proxy in its own Node process, like the peers.
  const snitchDir = join(workDir, "snitch");
  mkdirSync(snitchDir, { recursive: true });
  const benchDir = dirname(dirname(fileURLToPath(import.meta.url)));
  const profile = values["snitch-cpu-prof"];
  const snitchArgs = [...(profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profile}`]), "--import", "tsx", join(benchDir, "src", "proxy-server.ts"), "--state", snitchDir, "--port", String(snitchPort), "--backend", `127.0.0.1:${backendPort}`, "--host", HOST, "--key", keyFile, "--chain", chainFile, "--workers", values.workers];
  const snitch = startDaemon("snitch-proxy", process.execPath, snitchArgs, join(snitchDir, "output.log"), { cwd: benchDir, stdin: "pipe", stdout: "pipe" });
  daemons.push(snitch);
  await readyLine(snitch);
  await waitServing(snitch, snitchPort, trust, join(snitchDir, "output.log"));

  const script = join(workDir, "report.lua");
  writeFileSync(script, LUA);
  const wrkLog = join(workDir, "wrk.log");

  interface Target {
    readonly name: string;
    readonly port: number;
    readonly watch: () => Watched[];
  }
  const backendTree = () => treeOf("backend", backend);
  const targets: Target[] = [
    // The main thread is where snitch-proxy's JavaScript runs: it shows whether one core is the limit.
    { name: "snitch", port: snitchPort, watch: () => [...treeOf("proxy", snitch), { label: "proxy main thread", pid: snitch.pid, tid: snitch.pid }, ...backendTree()] },
    { name: "nginx", port: nginxPort, watch: () => [...treeOf("proxy", nginx), ...backendTree()] },
    { name: "caddy", port: caddyPort, watch: () => [...treeOf("proxy", caddy), ...backendTree()] },
  ];
  const results = new Map<string, { result: WrkResult; cpu: Map<string, number> }[]>(targets.map((t) => [t.name, []]));

  out("");
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      if (WARMUP > 0) await wrk(target.port, WARMUP, script, wrkLog);
      const run = await wrk(target.port, DURATION, script, wrkLog, target.watch);
      results.get(target.name)?.push(run);
      const r = run.result;
      const errors = r.connect + r.read + r.write + r.status + r.timeout;
      out(`round ${round} ${target.name.padEnd(6)} ${(r.requests / (r.durationUs / 1e6)).toFixed(0).padStart(7)} req/s  p50 ${(r.p50Us / 1000).toFixed(2)} ms  p99 ${(r.p99Us / 1000).toFixed(2)} ms  errors ${errors}  cpu ${[...run.cpu].map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`);
    }
  }

  const summary = targets.map((t) => {
    const runs = results.get(t.name) ?? [];
    const cpuOf = (select: (label: string) => boolean) =>
      median(runs.map((run) => [...run.cpu].filter(([label]) => select(label)).reduce((sum, [, v]) => sum + v, 0)));
    return {
      name: t.name,
      rps: median(runs.map((run) => run.result.requests / (run.result.durationUs / 1e6))),
      p99: median(runs.map((run) => run.result.p99Us / 1000)),
      errors: runs.reduce((sum, run) => sum + run.result.connect + run.result.read + run.result.write + run.result.status + run.result.timeout, 0),
      cpuProxy: cpuOf((l) => l === "proxy" || l.startsWith("proxy#")),
      cpuProcesses: runs[0] ? [...runs[0].cpu.keys()].filter((l) => l.startsWith("proxy#")).length || 1 : 1,
      cpuMain: cpuOf((l) => l === "proxy main thread"),
      cpuBackend: cpuOf((l) => l.startsWith("backend")),
      cpuWrk: cpuOf((l) => l === "wrk"),
    };
  });
  const by = (name: string) => summary.find((s) => s.name === name);
  const s = by("snitch");
  const n = by("nginx");
  const c = by("caddy");

  out("");
  out(`| proxy (median of ${ROUNDS} × ${DURATION} s, ${CONNECTIONS} connections) | req/s | p99 latency | errors | CPU proxy (cores) | CPU backend | CPU wrk |`);
  out("|---|---|---|---|---|---|---|");
  for (const row of summary) {
    const proxyCpu = row.name === "snitch" ? `${row.cpuProxy.toFixed(2)} (main thread ${row.cpuMain.toFixed(2)})` : `${row.cpuProxy.toFixed(2)} (${row.cpuProcesses} ${row.cpuProcesses === 1 ? "process" : "processes"})`;
    out(`| ${row.name === "snitch" ? "snitch-proxy" : row.name === "caddy" ? "Caddy" : "nginx"} | ${Math.round(row.rps).toLocaleString("en")} | ${row.p99.toFixed(2)} ms | ${row.errors} | ${proxyCpu} | ${row.cpuBackend.toFixed(2)} | ${row.cpuWrk.toFixed(2)} |`);
  }
  out("");
  if (s && n && c) {
    const vsNginx = s.rps / n.rps;
    const vsCaddy = s.rps / c.rps;
    out(`ratios (req/s): snitch/nginx ${vsNginx.toFixed(2)}×, snitch/Caddy ${vsCaddy.toFixed(2)}×; p99: snitch/nginx ${(s.p99 / n.p99).toFixed(2)}×, snitch/Caddy ${(s.p99 / c.p99).toFixed(2)}×`);
    out(`goal (issue 4): snitch ≥ 1.0× Caddy: ${vsCaddy >= 1 ? "met" : "NOT met"} (${vsCaddy.toFixed(2)}×); snitch ≥ 0.5× nginx: ${vsNginx >= 0.5 ? "met" : "NOT met"} (${vsNginx.toFixed(2)}×)`);
  }
  out(`CPU is in cores (1.00 = one core busy), sampled over each run but its first and last second; load average at the end ${loadavg().map((x) => x.toFixed(2)).join(" ")}`);
  const snitchLog = join(snitchDir, "proxy.log");
  const logged = (() => {
    try {
      return readFileSync(snitchLog, "utf8").split("\n").filter((l) => l.includes('"level":50') || l.includes('"level":40')).length;
    } catch {
      return 0;
    }
  })();
  if (logged > 0) out(`note: snitch-proxy logged ${logged} warnings or errors during the run (BENCH_KEEP=1 keeps ${snitchLog})`);
} finally {
  clearTimeout(budget);
  await cleanup();
}
