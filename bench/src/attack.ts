// bench/attack: does a well-behaved client keep getting answers while the box is attacked? The
// whole appliance runs (`coyote up --no-build`) with two sites behind snitch-proxy: one whose
// backend (nginx) answers a small body, one whose backend accepts websocket upgrades and then says
// nothing. A well-behaved client asks the site every 50 ms over one keep-alive connection and the
// panel's sign-in page every 500 ms, first alone, then while the attacker (lib/attacker.ts), from
// other loopback addresses and in a process of its own, holds silent, slow, idle and upgraded
// connections and sends bursts of malformed requests and wrong sign-ins. Prints the client's p50/p99/errors in both phases, their
// ratio, and what the server did with each attack shape.
//
//   node --import tsx bench/src/attack.ts [--calm 20] [--attack 60] [--per-shape 200] [--open-rate 50] [--sign-ins 8] [--sources 4]
//
// Everything is on 127.0.0.0/8; the appliance and nginx are stopped by their pids, and the state
// folder is removed at the end (BENCH_KEEP=1 keeps it).
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Agent, request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { freePorts } from "@coyote/testing";
import { startAppliance, stopAppliance } from "./lib/appliance.ts";
import type { AttackTarget, ShapeReport } from "./lib/attacker.ts";
import { startBackend, type PeerSetup } from "./lib/peers.ts";
import { startDaemon, stopDaemon, type Daemon } from "./lib/proc.ts";

const { values } = parseArgs({
  options: {
    calm: { type: "string", default: "20" },
    attack: { type: "string", default: "60" },
    "per-shape": { type: "string", default: "200" },
    "open-rate": { type: "string", default: "50" },
    "sign-ins": { type: "string", default: "8" },
    sources: { type: "string", default: "4" },
  },
});
const num = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`bench/attack: --${name} must be a positive integer`);
  return n;
};
const CALM_S = num("calm");
const ATTACK_S = num("attack");
const PER_SHAPE = num("per-shape");
const OPEN_RATE = num("open-rate");
const SIGN_INS = num("sign-ins");
const SOURCES = Math.min(num("sources"), 200);
const BOX = "box.test";
const SITE = `shop.${BOX}`;
const WS_SITE = `chat.${BOX}`;
const BODY = "hello from the backend\n";

const out = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** A client's record of one phase: each request's latency, and its failures by kind. */
interface ClientRecord {
  readonly latencies: number[];
  readonly errors: Map<string, number>;
}

/** Asks `get` every `everyMs` until `signal` aborts; one request at a time. */
async function steadyClient(get: () => Promise<number>, everyMs: number, signal: AbortSignal): Promise<ClientRecord> {
  const record: ClientRecord = { latencies: [], errors: new Map() };
  while (!signal.aborted) {
    const started = performance.now();
    try {
      const status = await get();
      if (status >= 500 || status === 0) record.errors.set(`status ${status}`, (record.errors.get(`status ${status}`) ?? 0) + 1);
      else record.latencies.push(performance.now() - started);
    } catch (error) {
      const kind = (error as NodeJS.ErrnoException).code ?? (error as Error).name;
      record.errors.set(kind, (record.errors.get(kind) ?? 0) + 1);
    }
    const left = everyMs - (performance.now() - started);
    if (left > 0) await sleep(left);
  }
  return record;
}

const workDir = mkdtempSync(join(tmpdir(), "coyote-bench-attack-"));
const daemons: Daemon[] = [];
let appliancePid: number | undefined;
const cleanup = async () => {
  if (appliancePid !== undefined) await stopAppliance(appliancePid);
  await Promise.all(daemons.map((d) => stopDaemon(d)));
  if (process.env.BENCH_KEEP === undefined) rmSync(workDir, { recursive: true, force: true });
  else out(`work folder kept in ${workDir}`);
};
process.once("SIGINT", () => void cleanup().finally(() => process.exit(130)));
const budget = setTimeout(() => void cleanup().finally(() => process.exit(1)), (CALM_S * 2 + ATTACK_S + 300) * 1000);
budget.unref();

// A backend that accepts every websocket upgrade and then holds the connection without a word.
const wsBackend = createServer((socket) => {
  socket.on("error", () => undefined);
  socket.once("data", () => socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
});

try {
  const repo = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
  const [backendPort = 0] = await freePorts(1);
  const setup: PeerSetup = { workDir, host: SITE, keyFile: "", chainFile: "", daemons };
  startBackend(setup, backendPort, BODY);
  await new Promise<void>((resolve) => wsBackend.listen(0, "127.0.0.1", resolve));
  const wsAddress = wsBackend.address();
  const wsPort = typeof wsAddress === "object" && wsAddress !== null ? wsAddress.port : 0;

  const stateDir = join(workDir, "state");
  mkdirSync(stateDir, { mode: 0o700 });
  const box = await startAppliance(repo, stateDir, { hostname: BOX, customerDomain: BOX });
  appliancePid = box.pid;
  const author = { name: "bench", email: "bench@example.org" };
  const site = (id: string, name: string, address: string) => ({ schemaVersion: 1, kind: "Service", id, domains: [{ name }], web: { hostnames: [name], backend: { kind: "upstream", address } } });
  await box.store.applySpec(site("shop", SITE, `127.0.0.1:${backendPort}`), { author });
  await box.store.applySpec(site("chat", WS_SITE, `127.0.0.1:${wsPort}`), { author });

  // Until the minion has made the box's CA, written the routes and issued the certificates, the
  // sites are not there yet.
  const readyBy = Date.now() + 90_000;
  let ca: string | undefined;
  while (ca === undefined) {
    if (Date.now() > readyBy) throw new Error(`the box's CA (${box.caFile}) was not made within 90 s`);
    ca = (() => {
      try {
        return readFileSync(box.caFile, "utf8");
      } catch {
        return undefined;
      }
    })();
    if (ca === undefined) await sleep(250);
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca });
  const getSite = () =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port: box.ports.https, servername: SITE, headers: { host: SITE }, path: "/", agent, timeout: 10_000 }, (res) => {
        res.resume();
        res.once("end", () => resolve(res.statusCode ?? 0));
        res.once("error", reject);
      });
      req.once("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "TIMEOUT" })));
      req.once("error", reject);
      req.end();
    });
  const getPanel = async () => {
    const r = await fetch(new URL("login", box.panelUrl), { redirect: "manual", signal: AbortSignal.timeout(10_000) });
    await r.body?.cancel();
    return r.status;
  };
  while ((await getSite().catch(() => 0)) !== 200) {
    if (Date.now() > readyBy) throw new Error(`the site ${SITE} did not answer 200 through snitch-proxy within 90 s`);
    await sleep(250);
  }

  const target: AttackTarget = { httpsPort: box.ports.https, site: SITE, wsSite: WS_SITE, panelUrl: box.panelUrl, sources: Array.from({ length: SOURCES }, (_, i) => `127.0.0.${i + 2}`) };
  // The attacker runs in a process of its own (attacker-process.ts) and reports when done.
  const attacker = async (seconds: number): Promise<{ shapes: ShapeReport[]; signIns: Map<string, number> }> => {
    const args = ["--import", "tsx", join(dirname(fileURLToPath(import.meta.url)), "attacker-process.ts"), JSON.stringify({ target, seconds, perShape: PER_SHAPE, openRate: OPEN_RATE, signIns: SIGN_INS })];
    const daemon = startDaemon("attacker", process.execPath, args, join(workDir, "attacker.log"), { stdin: "pipe", stdout: "pipe" });
    daemons.push(daemon);
    let stdout = "";
    daemon.child.stdout?.setEncoding("utf8");
    daemon.child.stdout?.on("data", (chunk: string) => (stdout += chunk));
    await daemon.exited;
    const line = stdout.split("\n").find((l) => l.startsWith("REPORT "));
    if (line === undefined) throw new Error(`the attacker printed no report; see ${join(workDir, "attacker.log")}`);
    const report = JSON.parse(line.slice("REPORT ".length)) as { shapes: (Omit<ShapeReport, "answers"> & { answers: [string, number][] })[]; signIns: [string, number][] };
    return { shapes: report.shapes.map((s) => ({ ...s, answers: new Map(s.answers) })), signIns: new Map(report.signIns) };
  };
  const phase = async (seconds: number, attack: boolean) => {
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), seconds * 1000);
    const [siteRecord, panelRecord, attacked] = await Promise.all([
      steadyClient(getSite, 50, stop.signal),
      steadyClient(getPanel, 500, stop.signal),
      attack ? attacker(seconds) : Promise.resolve({ shapes: [] as ShapeReport[], signIns: new Map<string, number>() }),
    ]);
    clearTimeout(timer);
    return { siteRecord, panelRecord, ...attacked };
  };

  out(`calm: ${CALM_S} s of the well-behaved client alone`);
  const calm = await phase(CALM_S, false);
  out(`attack: ${ATTACK_S} s, ${PER_SHAPE} connections per shape from ${SOURCES} addresses, ${OPEN_RATE} new a second per shape, ${SIGN_INS} wrong sign-ins in flight`);
  const attacked = await phase(ATTACK_S, true);

  const row = (name: string, record: ClientRecord) => {
    const sorted = [...record.latencies].sort((a, b) => a - b);
    const errors = [...record.errors].map(([k, v]) => `${k} ${v}`).join(", ") || "0";
    return { name, n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0, errors };
  };
  out("");
  out("| client | phase | answers | p50 | p99 | max | errors |");
  out("|---|---|---|---|---|---|---|");
  const rows: [string, ReturnType<typeof row>, ReturnType<typeof row>][] = [
    ["site through snitch-proxy", row("calm", calm.siteRecord), row("attack", attacked.siteRecord)],
    ["panel sign-in page", row("calm", calm.panelRecord), row("attack", attacked.panelRecord)],
  ];
  for (const [client, a, b] of rows) {
    for (const r of [a, b]) out(`| ${client} | ${r.name} | ${r.n} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.max.toFixed(1)} ms | ${r.errors} |`);
  }
  out("");
  for (const [client, a, b] of rows) out(`${client}: p99 under attack ${(b.p99 / a.p99).toFixed(2)}× the calm p99`);
  out("");
  out("| attack shape | opened | closed by the server | median life | answers |");
  out("|---|---|---|---|---|");
  for (const s of attacked.shapes) {
    const lives = [...s.lifetimes].sort((a, b) => a - b);
    const answers = [...s.answers].map(([k, v]) => `${k} ×${v}`).join("; ") || "none";
    out(`| ${s.shape} | ${s.opened} | ${s.closedByServer} | ${lives.length === 0 ? "-" : `${(quantile(lives, 0.5) / 1000).toFixed(1)} s`} | ${answers} |`);
  }
  out(`wrong sign-ins: ${[...attacked.signIns].map(([k, v]) => `${k} ×${v}`).join(", ") || "none"}`);
} finally {
  clearTimeout(budget);
  wsBackend.close();
  await cleanup();
}
process.exit(0);
