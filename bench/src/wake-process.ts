// bench/wake-process: what a process unit's own network costs at a cold start. The time from a
// wake asked of docker-activator to the first byte of a GET at the address it answers, for the
// same busybox httpd unit run three ways, interleaved round by round: in a network namespace of
// its own (the default as root: unshare, a veth link, setpriv), on the host's network
// (COYOTE_PROCESS_UNIT_NETWORK=host), and bare (spawned directly, polled until it answers: the
// peer). Prints the medians and the ratios to bare.
//
//   node --import tsx bench/src/wake-process.ts [--rounds 10]
//
// Needs root (making a network) and Debian's busybox-static. Everything runs from a temporary
// folder, on loopback and on the test's own veth links (10.233.250.0/24), and is stopped by pid.
import { spawn } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { ActivatorClient, startActivator, type RunningActivator } from "@coyote/docker-activator";
import { createLogger } from "@coyote/log";
import { ServerSpec, StateStore, writeFileAtomic } from "@coyote/spec";
import { freePort } from "@coyote/testing";
import { firstByte } from "./lib/first-byte.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "10" } } });
const rounds = Number(values.rounds);
const BUSYBOX = "/usr/bin/busybox";
const POOL = "10.233.250.0/24";
const out = (line: string) => process.stdout.write(`${line}\n`);

if (process.getuid?.() !== 0) {
  process.stderr.write("bench/wake-process: needs root, to give units networks of their own\n");
  process.exit(2);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const dir = await mkdtemp(join(tmpdir(), "coyote-wake-process-"));
await chmod(dir, 0o755);
const bin = join(dir, "bin");
const www = join(dir, "www");
await mkdir(bin, { recursive: true });
await mkdir(www, { recursive: true });
await copyFile(BUSYBOX, join(bin, "busybox"));
for (const applet of ["sh", "httpd"]) await symlink("busybox", join(bin, applet));
await writeFile(join(www, "index.html"), "hello\n");

const running: RunningActivator[] = [];
const clients: ActivatorClient[] = [];

/** An activator of its own state folder, with one unit serving busybox httpd. */
async function activatorWith(name: string, network: string): Promise<{ client: ActivatorClient; stateDir: string }> {
  const stateDir = join(dir, name);
  const store = await StateStore.open(stateDir);
  await store.applySpec(ServerSpec.parse({ schemaVersion: 1, kind: "Server", name, hostname: "box.bench.example", runtime: "process" }), { author: { name: "bench", email: "bench@example.org" } });
  const port = await freePort();
  const unit = { id: "web", serviceId: "web", runtime: "process", command: [join(bin, "sh"), "-c", `exec httpd -f -p $HOST:${port} -h ${www}`], port, host: "127.0.0.1", env: {}, memoryMb: 64, idleTimeoutSeconds: 1, dumpTimeoutSeconds: 5, readiness: { kind: "tcp" }, readinessTimeoutSeconds: 30 };
  await writeFileAtomic(join(stateDir, "activator", "units.json"), `${JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), units: [unit] })}\n`);
  const logger = createLogger({ component: "docker-activator", file: join(stateDir, "activator.log"), level: "warn" });
  running.push(await startActivator({ name: "docker-activator", stateDir: store.root, logger, signal: new AbortController().signal }, { baseEnv: { PATH: `${bin}:/usr/bin:/bin` }, processUnitNetwork: network, tickMs: 100, writeStats: false }));
  const client = new ActivatorClient(store.root);
  clients.push(client);
  return { client, stateDir };
}

/** Milliseconds from the wake to the first byte at the answered address; then waits for the idle stop. */
async function coldWake(client: ActivatorClient): Promise<number> {
  const t0 = performance.now();
  const answer = await client.wake("web", { timeoutMs: 30_000 });
  const [host = "", port = "0"] = answer.address.split(":");
  if (!(await firstByte(host, Number(port)))) throw new Error(`bench/wake-process: no answer at ${answer.address}`);
  const ms = performance.now() - t0;
  for (let i = 0; i < 100; i++) {
    const units = (await client.units()) as { units: Record<string, { state: string }> };
    if (units.units.web?.state === "stopped") return ms;
    await sleep(100);
  }
  throw new Error("bench/wake-process: the unit did not stop when idle");
}

/** Milliseconds from spawning busybox httpd to its first byte, polled every 2 ms. */
async function bare(): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(join(bin, "httpd"), ["-f", "-p", `127.0.0.1:${port}`, "-h", www], { stdio: "ignore", detached: true, uid: 65534, gid: 65534 });
  try {
    for (;;) {
      if (await firstByte("127.0.0.1", port)) return performance.now() - t0;
      if (performance.now() - t0 > 10_000) throw new Error("bench/wake-process: bare httpd did not answer");
      await sleep(2);
    }
  } finally {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  }
}

try {
  const own = await activatorWith("own", POOL);
  const host = await activatorWith("host", "host");
  const times = { own: [] as number[], host: [] as number[], bare: [] as number[] };
  for (let round = 1; round <= rounds; round++) {
    times.own.push(await coldWake(own.client));
    times.host.push(await coldWake(host.client));
    times.bare.push(await bare());
    out(`round ${round}: own network ${times.own.at(-1)?.toFixed(1)} ms, host network ${times.host.at(-1)?.toFixed(1)} ms, bare ${times.bare.at(-1)?.toFixed(1)} ms`);
  }
  const [o, h, b] = [median(times.own), median(times.host), median(times.bare)];
  out(`\nmedians of ${rounds}: own network ${o.toFixed(1)} ms, host network ${h.toFixed(1)} ms, bare ${b.toFixed(1)} ms`);
  out(`own network / host network ${(o / h).toFixed(2)}x, own network - host network ${(o - h).toFixed(1)} ms; host network / bare ${(h / b).toFixed(2)}x`);
} finally {
  for (const client of clients) client.close();
  for (const activator of running) await activator.stop();
  await rm(dir, { recursive: true, force: true });
}
