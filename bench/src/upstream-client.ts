// bench/upstream-client: the CPU one upstream request costs snitch-proxy's process, with node:http's
// keep-alive Agent, with undici's Pool and with snitch-proxy's own client (Origins, http1/origin.ts),
// against the same local backend, interleaved. The upstream client is chosen
// by benchmark; this is that benchmark.
//
//   node --import tsx src/upstream-client.ts [--rounds 5 --requests 12800 --concurrency 64]
import { fork } from "node:child_process";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { Origins } from "@coyote/snitch-proxy";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "5" }, requests: { type: "string", default: "12800" }, concurrency: { type: "string", default: "64" }, backend: { type: "string" }, client: { type: "string" } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const body = "hello from the backend\n";

if (values.backend === "serve") {
  // The backend runs in its own process so that the client's CPU time is the client's alone.
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
    res.end(body);
  });
  server.listen(0, "127.0.0.1", () => process.send?.((server.address() as AddressInfo).port));
  process.on("disconnect", () => process.exit(0));
} else if (values.client !== undefined) {
  const [kind, portText] = values.client.split(":");
  const port = Number(portText);
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  const pool = new Pool(`http://127.0.0.1:${String(port)}`, { connections: concurrency });
  const viaHttp = () => new Promise<void>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/", headers: { host: "bench" }, agent }, (res) => {
      res.resume();
      res.on("end", resolve);
    });
    req.on("error", reject);
    req.end();
  });
  const viaUndici = async () => {
    const { body: answer } = await pool.request({ path: "/", method: "GET", headers: { host: "bench" } });
    await answer.dump();
  };
  const origins = new Origins({ headersTimeoutMs: 10_000 });
  const target = { host: "127.0.0.1", port };
  const viaOrigins = () => new Promise<void>((resolve, reject) => {
    origins.send(target, { method: "GET", path: "/", headers: { host: "bench" }, body: null }, {
      onHead: () => undefined,
      onData: () => true,
      onEnd: resolve,
      onError: reject,
    });
  });
  const one = kind === "undici" ? viaUndici : kind === "origins" ? viaOrigins : viaHttp;
  const per = Math.ceil(requests / concurrency);
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = 0; i < per; i++) await one();
  }));
  const cpu = process.cpuUsage(cpu0);
  const seconds = (performance.now() - started) / 1000;
  process.send?.({ kind, perSecond: (per * concurrency) / seconds, cpuMicros: (cpu.user + cpu.system) / (per * concurrency) });
  await pool.close();
  agent.destroy();
  origins.close();
  process.exit(0);
} else {
  const self = import.meta.filename;
  const backend = fork(self, ["--backend", "serve"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const port = await new Promise<number>((resolve) => backend.once("message", (m) => resolve(Number(m))));
  const run = (kind: string) => new Promise<{ kind: string; perSecond: number; cpuMicros: number }>((resolve, reject) => {
    const child = fork(self, ["--client", `${kind}:${String(port)}`, "--requests", String(requests), "--concurrency", String(concurrency)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    child.once("message", (m) => resolve(m as { kind: string; perSecond: number; cpuMicros: number }));
    child.once("exit", (code) => code !== 0 && reject(new Error(`${kind} client exited ${String(code)}`)));
  });
  const clients = { "node:http": "http", undici: "undici", "snitch-proxy": "origins" } as const;
  const results: Record<string, { perSecond: number[]; cpu: number[] }> = { "node:http": { perSecond: [], cpu: [] }, undici: { perSecond: [], cpu: [] }, "snitch-proxy": { perSecond: [], cpu: [] } };
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const [kind, flag] of Object.entries(clients)) {
        const r = await run(flag);
        results[kind]?.perSecond.push(r.perSecond);
        results[kind]?.cpu.push(r.cpuMicros);
        process.stdout.write(`round ${String(round)} ${kind.padEnd(12)} ${Math.round(r.perSecond).toString().padStart(6)} req/s  ${r.cpuMicros.toFixed(0).padStart(4)} µs CPU per request\n`);
      }
    }
  } finally {
    backend.disconnect();
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
  const none = { perSecond: [], cpu: [] };
  const h = results["node:http"] ?? none;
  const u = results.undici ?? none;
  const o = results["snitch-proxy"] ?? none;
  const row = (name: string, r: { perSecond: number[]; cpu: number[] }) => `| ${name} | ${Math.round(median(r.perSecond)).toString()} | ${median(r.cpu).toFixed(0)} |\n`;
  process.stdout.write(`\n| client | req/s (median) | CPU µs per request (median) |\n|---|---|---|\n${row("node:http Agent", h)}${row("undici Pool", u)}${row("snitch-proxy Origins", o)}\n`);
  process.stdout.write(`CPU per request against node:http: undici ${(median(u.cpu) / median(h.cpu)).toFixed(2)}×, snitch-proxy ${(median(o.cpu) / median(h.cpu)).toFixed(2)}×\n`);
}
