// bench/signup: how long a customer's signup takes to show as provisioned. The crm's own signup
// (form checks, password hash, starter site, account row, service spec through the store) is
// called in-process, as its server action calls it, on a box that already serves a few services;
// the minion with its bundled actuators (built-in DNS, mail, XMPP, proxy routes with the box's
// own CA) runs in the same process. Measured: from the signup call to the new service's status
// saying Ready. The peer, in the same run and interleaved: the same spec written bare through the
// store (no form, no hash, no site, no account) and picked up by the same minion.
//
//   node --import tsx bench/src/signup.ts [--services 100] [--signups 10]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createLogger, logFileFor } from "@coyote/log";
import { Minion, bundledActuators } from "@coyote/minion";
import { StateStore, type ServiceSpec } from "@coyote/spec";
import { freePorts, freeUdpTcpPort } from "@coyote/testing";
// The crm's signup is plain functions over a database and a store (no Next), so the benchmark
// calls the code the panel runs.
import { openDb } from "../../apps/coyote-crm/src/lib/db.ts";
import { ensureDefaultPlan } from "../../apps/coyote-crm/src/lib/plans.ts";
import { signUp } from "../../apps/coyote-crm/src/lib/shop/signup.ts";

const { values } = parseArgs({ options: { services: { type: "string", default: "100" }, signups: { type: "string", default: "10" } } });
const SERVICES = Number(values.services);
const SIGNUPS = Number(values.signups);
if (!Number.isInteger(SERVICES) || SERVICES < 0 || SERVICES > 5000) throw new Error("--services: a whole number from 0 to 5000");
if (!Number.isInteger(SIGNUPS) || SIGNUPS < 1 || SIGNUPS > 200) throw new Error("--signups: a whole number from 1 to 200");
const AUTHOR = { name: "bench", email: "bench@coyote.invalid" };
/** The configuration alone is measured: no daemon runs, so the conditions mean "configured". */
const BENCH_ACTUATORS = { verifyDaemons: false };
const PASSWORD = "correct horse battery staple";
/** No wait for one service's Ready lasts longer than this. */
const READY_DEADLINE_MS = 60_000;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

const ms = (x: number) => `${x.toFixed(0)} ms`;
const out = (line: string) => process.stdout.write(`${line}\n`);

const stateDir = mkdtempSync(join(tmpdir(), "coyote-bench-signup-"));
const db = openDb(join(stateDir, "crm", "crm.db"));
try {
  ensureDefaultPlan(db);
  const store = await StateStore.open(stateDir, { author: AUTHOR });
  const [http = 0, https = 0, smtp = 0] = await freePorts(3);
  const dns = await freeUdpTcpPort();
  const serverInput = {
    schemaVersion: 1, kind: "Server", name: "bench", hostname: "box.bench.example", publicIPv4: "192.0.2.1", customerDomain: "shop.bench.example",
    activated: true, signupsOpen: true, runtime: "process", ports: { http, https }, dns: { listen: [`127.0.0.1:${dns}`] }, mail: { smtpListen: `127.0.0.1:${smtp}` },
  };
  await store.applySpec(serverInput, { author: AUTHOR });
  const server = await store.getSpec("server");
  if (server?.kind !== "Server") throw new Error("bench: the server spec did not store");

  // The box's existing customers: plain services with a zone each.
  for (let i = 0; i < SERVICES; i++) {
    await store.applySpec({ schemaVersion: 1, kind: "Service", id: `old-${i}`, domains: [{ name: `old-${i}.bench.example`, authoritative: true }] }, { author: AUTHOR });
  }
  const logger = createLogger({ component: "minion", file: logFileFor(stateDir, "minion"), level: "warn" });
  // The minion as `coyote up` runs it: its default debounce and batch size.
  const minion = new Minion({ stateDir, logger, actuators: (s) => bundledActuators(s, stateDir, BENCH_ACTUATORS) });
  await minion.start();
  await minion.idle();

  const readyAt = async (id: string, generation: number): Promise<number> => {
    const deadline = performance.now() + READY_DEADLINE_MS;
    for (;;) {
      const status = minion.statuses.get(id);
      if (status !== undefined && status.observedGeneration >= generation && status.conditions.find((c) => c.type === "Ready")?.status === "True") return performance.now();
      if (performance.now() > deadline) throw new Error(`bench: ${id} not Ready within ${READY_DEADLINE_MS} ms: ${JSON.stringify(status?.conditions.map((c) => [c.type, c.status, c.reason]))}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };

  const signupTimes: number[] = [];
  const storedTimes: number[] = [];
  const peerTimes: number[] = [];
  for (let n = 0; n < SIGNUPS; n++) {
    // A signup through the crm's code.
    const t0 = performance.now();
    const result = await signUp({ db, store, server, stateDir, clientAddress: `192.0.2.${n + 10}` }, { email: `c${n}@mail.bench.example`, password: PASSWORD, confirm: PASSWORD, domain: `c${n}.shop.bench.example`, plan: "starter" });
    const t1 = performance.now();
    if (!result.ok) throw new Error(`bench: signup ${n} refused: ${result.message ?? JSON.stringify(result.errors)}`);
    const stored = await store.getSpec(result.serviceId);
    if (stored?.kind !== "Service") throw new Error(`bench: no spec for ${result.serviceId}`);
    signupTimes.push((await readyAt(result.serviceId, stored.generation ?? 1)) - t0);
    storedTimes.push(t1 - t0);

    // The peer: the same spec, another id and domain, written bare.
    const peerId = `peer-${n}`;
    const peerSpec = JSON.parse(JSON.stringify({ ...stored, id: peerId, generation: undefined }).replaceAll(`c${n}.shop.bench.example`, `p${n}.shop.bench.example`)) as ServiceSpec;
    const p0 = performance.now();
    const written = await store.applySpec(peerSpec, { author: AUTHOR });
    peerTimes.push((await readyAt(peerId, written.generation)) - p0);
  }
  await minion.stop();
  await logger.close();

  out(`| measure (${SERVICES} services on the box, ${SIGNUPS} signups, median) | signup through the crm | bare spec write (peer) | ratio |`);
  out("|---|---|---|---|");
  out(`| submission → Ready in the service's status | ${ms(median(signupTimes))} | ${ms(median(peerTimes))} | ${(median(signupTimes) / median(peerTimes)).toFixed(2)}× |`);
  out(`| of which the signup itself (checks, hash, site, account, spec stored) | ${ms(median(storedTimes))} | | |`);
  out(`| slowest of the ${SIGNUPS} | ${ms(Math.max(...signupTimes))} | ${ms(Math.max(...peerTimes))} | |`);
} finally {
  db.$client.close();
  if (process.env.BENCH_KEEP === undefined) rmSync(stateDir, { recursive: true, force: true });
  else out(`state kept in ${stateDir}`);
}
