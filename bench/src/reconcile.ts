// bench/reconcile: the minion with 1,000 services and its bundled actuators (built-in DNS, mail
// and XMPP configuration), against the same actuators driven directly (no queue, no watcher, no
// status, no journal) in the same run. Prints (a) the time to converge one changed spec, (b) the
// time of a full resync with nothing changed and with a few services damaged behind the minion's
// back, (c) peak RSS, and the ratios against the direct peer (which runs the same built-in DNS
// server, so both pay for its reloads).
//
//   node --import tsx bench/src/reconcile.ts [--services 1000] [--changes 20]
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Actuator, ActuatorContext } from "@coyote/actuator";
import { hashPassword } from "@coyote/actuator-mailconf";
import { scramSha1Credentials } from "@coyote/actuator-xmppconf";
import { createLogger, logFileFor } from "@coyote/log";
import { Minion, bundledActuators, serverOrDefaults } from "@coyote/minion";
import { StateStore, type ServerSpec, type ServiceSpec } from "@coyote/spec";

const { values } = parseArgs({ options: { services: { type: "string", default: "1000" }, changes: { type: "string", default: "20" } } });
const SERVICES = Number(values.services);
const CHANGES = Number(values.changes);
const AUTHOR = { name: "bench", email: "bench@coyote.invalid" };
/** The configuration alone is measured: no daemon runs, so the conditions mean "configured". */
const BENCH_ACTUATORS = { verifyDaemons: false };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

const stateDir = mkdtempSync(join(tmpdir(), "coyote-bench-reconcile-"));
const out = (line: string) => process.stdout.write(`${line}\n`);
try {
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  const serverInput = { schemaVersion: 1, kind: "Server", name: "bench", hostname: "box.bench.example", publicIPv4: "192.0.2.1", dns: { listen: ["127.0.0.1:15399"] } };
  await store.applySpec(serverInput, { author: AUTHOR });
  const server: ServerSpec = serverOrDefaults(await store.getSpec("server") as ServerSpec);
  const xmppHash = scramSha1Credentials("bench password");
  const mailHash = await hashPassword("bench password");
  const spec = (i: number, round: number): ServiceSpec => ({
    schemaVersion: 1,
    kind: "Service",
    id: `svc-${i}`,
    domains: [{ name: `svc-${i}.bench.example`, authoritative: true, records: [{ name: "@", type: "TXT", text: `round ${round}` }, { name: "www", type: "CNAME", target: `svc-${i}.bench.example` }] }],
    xmpp: { users: [{ username: "owner", domain: `svc-${i}.bench.example`, passwordHash: xmppHash }] },
    ...(i % 10 === 0 ? { mail: { mailboxes: [{ address: `owner@svc-${i}.bench.example`, passwordHash: mailHash }], aliases: [] } } : {}),
  });

  let started = performance.now();
  for (let i = 0; i < SERVICES; i++) await store.applySpec(spec(i, 0), { author: AUTHOR });
  out(`setup: ${SERVICES} specs applied through the store in ${ms(performance.now() - started)} (${ms((performance.now() - started) / SERVICES)} each, a git commit each)`);

  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion"), level: (process.env.BENCH_LOG_LEVEL ?? "warn") as "warn" });
  const minion = new Minion({ stateDir, logger, actuators: (s) => bundledActuators(s, stateDir, BENCH_ACTUATORS), debounceMs: 5 });
  started = performance.now();
  await minion.start();
  const allReady = () => [...Array(SERVICES).keys()].every((i) => minion.statuses.get(`svc-${i}`)?.conditions.find((c) => c.type === "Ready")?.status === "True");
  while (!allReady()) await new Promise((r) => setTimeout(r, 20));
  out(`initial converge of ${SERVICES} services (${Math.ceil(SERVICES / 10)} DKIM keys made): ${ms(performance.now() - started)}`);

  // (a) one changed spec, from the write to the status that observes it.
  const endToEnd: number[] = [];
  const minionPart: number[] = [];
  for (let n = 0; n < CHANGES; n++) {
    const i = (n * 37) % SERVICES;
    const t0 = performance.now();
    const result = await store.applySpec(spec(i, n + 1), { author: AUTHOR });
    const t1 = performance.now();
    while (minion.statuses.get(`svc-${i}`)?.observedGeneration !== result.generation) await new Promise((r) => setImmediate(r));
    const t2 = performance.now();
    endToEnd.push(t2 - t0);
    minionPart.push(t2 - t1);
  }

  // (b) a full resync: nothing changed, then a few zone files damaged behind the minion's back.
  const resync = async () => {
    const t = performance.now();
    await minion.resync();
    await minion.idle();
    return performance.now() - t;
  };
  const resyncClean = [await resync(), await resync(), await resync()];
  const damaged = 10;
  for (let k = 0; k < damaged; k++) unlinkSync(join(stateDir, "dns", "zones", `svc-${k * 7}.bench.example.json`));
  const resyncDamaged = await resync();
  const repaired = [...Array(damaged).keys()].every((k) => {
    try {
      execFileSync("test", ["-f", join(stateDir, "dns", "zones", `svc-${k * 7}.bench.example.json`)]);
      return true;
    } catch {
      return false;
    }
  });
  await minion.stop();

  // The peer: the same actuators driven directly, without the minion.
  const actuators: Actuator[] = bundledActuators(server, stateDir, BENCH_ACTUATORS);
  const context = (a: Actuator): ActuatorContext => ({ stateDir, store, logger: logger.child({ actuator: a.id }), signal: new AbortController().signal, server });
  // The peer serves DNS too: its commits reload the same built-in server the minion's do.
  const handles = [];
  for (const a of actuators) if (a.start) handles.push(await a.start(context(a)));
  const direct: number[] = [];
  for (let n = 0; n < CHANGES; n++) {
    const i = (n * 37) % SERVICES;
    const wanted = spec(i, CHANGES + n + 1);
    await store.applySpec(wanted, { author: AUTHOR });
    const target = { id: wanted.id, spec: (await store.getSpec(wanted.id)) as ServiceSpec };
    const t = performance.now();
    for (const a of actuators) {
      const observed = await a.observe(target, context(a));
      const plan = a.plan(target, observed, server);
      if (plan.steps.length > 0) {
        await a.apply(plan, target, context(a));
        await a.commit?.(context(a));
      }
    }
    direct.push(performance.now() - t);
  }
  const directResync: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    for (let i = 0; i < SERVICES; i++) {
      const target = { id: `svc-${i}`, spec: (await store.getSpec(`svc-${i}`)) as ServiceSpec };
      for (const a of actuators) a.plan(target, await a.observe(target, context(a)), server);
    }
    directResync.push(performance.now() - t);
  }
  for (const handle of handles) await handle.stop();
  await logger.close();

  const rssMb = process.resourceUsage().maxRSS / 1024;
  out("");
  out(`| measure (${SERVICES} services) | minion | direct actuators | ratio |`);
  out("|---|---|---|---|");
  out(`| (a) one changed spec, median of ${CHANGES}: write → status observed | ${ms(median(endToEnd))} | | |`);
  out(`| (a) one changed spec, median: spec committed → status observed | ${ms(median(minionPart))} | ${ms(median(direct))} | ${(median(minionPart) / median(direct)).toFixed(2)}× |`);
  out(`| (b) full resync, nothing changed (median of 3) | ${ms(median(resyncClean))} | ${ms(median(directResync))} | ${(median(resyncClean) / median(directResync)).toFixed(2)}× |`);
  out(`| (b) full resync, ${damaged} zone files deleted behind its back | ${ms(resyncDamaged)} (repaired: ${String(repaired)}) | | |`);
  out(`| (c) peak RSS of the whole run | ${rssMb.toFixed(0)} MiB | | |`);
} finally {
  if (process.env.BENCH_KEEP === undefined) rmSync(stateDir, { recursive: true, force: true });
  else out(`state kept in ${stateDir}`);
}
