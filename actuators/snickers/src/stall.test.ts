import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore, certificateFileName, parseJson, validate } from "@coyote/spec";
import { CertificateMeta, createSnickersActuator, type SnickersOptions } from "./actuator.ts";
import { LocalCa } from "./local-ca.ts";
import { startStalledCa, type StalledCa } from "./test/support.ts";

const AUTHOR = { name: "Test", email: "test@example.org" };

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A CA whose directory answers and whose every other URL accepts TCP and never answers. */
describe("ACME orders against a CA that never answers", () => {
  let dir: string;
  let logger: CoyoteLogger;
  let store: StateStore;
  let ca: StalledCa;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "snickers-stall-"));
    logger = createLogger({ component: "minion", file: join(dir, "minion.log") });
    store = await StateStore.open(join(dir, "state"), { author: AUTHOR });
    ca = await startStalledCa(join(dir, "ca"));
  });
  after(async () => {
    await ca.stop();
    await logger.close();
    await rm(dir, { recursive: true, force: true });
  });

  const server = () => validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.test", certificates: { mode: "acme", directoryUrl: ca.directoryUrl, email: "admin@box.test", caBundleFile: ca.caFile } }, "server");
  const service = (id: string, hostnames: string[]) => validate(ServiceSpec, { schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.test` }], web: { hostnames, backend: { kind: "static", root: "." } } }, id);
  const context = (): ActuatorContext => ({ stateDir: store.root, store, logger, signal: new AbortController().signal, server: server() });
  const meta = (host: string) => readFile(join(store.root, "proxy", "certs", certificateFileName(host).replace(/\.pem$/, ".json")), "utf8").then((text) => parseJson(CertificateMeta, text, host), () => undefined);
  const failedOrder = (host: string) => async () => {
    const found = await meta(host);
    return found?.attempts.failures === 1 ? found : undefined;
  };

  async function orderFor(id: string, hosts: string[], options: Partial<SnickersOptions>) {
    const snickers = createSnickersActuator({ stateDir: store.root, orderPollMs: 50, ...options });
    const handle = await snickers.start?.(context());
    const target: Target = { id, spec: service(id, hosts) };
    const first = await converge(snickers, target, context());
    assert.equal(first.requeue?.reason, "CertificatePending");
    const started = performance.now();
    await snickers.commit?.(context());
    const commitMs = performance.now() - started;
    return { snickers, target, commitMs, stop: () => handle?.stop() };
  }

  it("commits at once, runs at most two orders at a time, and ends each at its deadline with a clear message", async () => {
    const hosts = ["a.stall.test", "b.stall.test", "c.stall.test"];
    const started = performance.now();
    const run = await orderFor("stall", hosts, { orderConcurrency: 2, orderTimeoutMs: 700, acmeCallTimeoutMs: 60_000 });
    try {
      assert.ok(run.commitMs < 500, `the commit does not wait for the CA (${Math.round(run.commitMs)} ms)`);
      // While the first two orders stall, the service is looked at again and told to wait.
      const meanwhile = await converge(run.snickers, run.target, context());
      assert.equal(meanwhile.requeue?.reason, "CertificatePending");
      assert.equal(meanwhile.requeue.afterMs, 50);
      // Sampled inside the first round (the server sees a closed socket a moment late).
      await until("two orders at the CA", () => Promise.resolve(ca.openConnections() >= 2 ? true : undefined), 400);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(ca.openConnections(), 2, "at most two orders talk to the CA at once");
      for (const host of hosts) {
        const failed = await until(`the order of ${host} to fail`, failedOrder(host), 5000);
        assert.match(failed.attempts.lastError ?? "", new RegExp(`ordering a certificate for ${host.replace(/\./g, "\\.")} from https://localhost:\\d+/dir: the order did not finish before its deadline`));
      }
      const elapsed = performance.now() - started;
      // Two rounds of 0.7 s (three orders, two at a time), not one CA timeout after another.
      assert.ok(elapsed >= 1300 && elapsed < 4000, `three stalled orders took ${Math.round(elapsed)} ms`);
      const after = await converge(run.snickers, run.target, context());
      assert.equal(after.requeue?.reason, "CertificateBackoff");
      assert.match(after.requeue.message, /did not finish before its deadline\); next attempt at/);
    } finally {
      await run.stop();
    }
  });

  it("asks the CA for renewal info in the background, and gives up at the question's deadline", async () => {
    const host = "x.ari.test";
    const issued = (await LocalCa.open(join(dir, "leaf-ca"), "leaf-ca")).issue([host]);
    const certs = join(store.root, "proxy", "certs");
    await mkdir(certs, { recursive: true });
    await writeFile(join(certs, certificateFileName(host)), issued.keyPem + issued.chainPem, { mode: 0o600 });
    const meta0: CertificateMeta = {
      schemaVersion: 1, host, serviceId: "ari", attempts: { failures: 0 },
      certificate: { issuer: "acme", directoryUrl: ca.directoryUrl, notBefore: issued.notBefore.toISOString(), notAfter: issued.notAfter.toISOString(), renewAfter: issued.notAfter.toISOString(), ariNextCheckAt: new Date(Date.now() - 1000).toISOString() },
    };
    await writeFile(join(certs, certificateFileName(host).replace(/\.pem$/, ".json")), JSON.stringify(meta0));
    const snickers = createSnickersActuator({ stateDir: store.root, acmeCallTimeoutMs: 1500 });
    const handle = await snickers.start?.(context());
    try {
      const started = performance.now();
      const result = await converge(snickers, { id: "ari", spec: service("ari", [host]) }, context());
      const ms = performance.now() - started;
      assert.ok(result.plan.describe.includes(`ask the CA when to renew ${host}`), result.plan.describe.join("; "));
      assert.ok(ms < 700, `the apply does not wait for the CA (${Math.round(ms)} ms)`);
      const asked = await until("the question to give up", async () => {
        const found = await meta(host);
        return found?.certificate?.ariNextCheckAt !== meta0.certificate?.ariNextCheckAt ? found : undefined;
      }, 5000);
      assert.ok(Date.parse(asked.certificate?.ariNextCheckAt ?? "") > Date.now() + 5 * 3_600_000, "asked again in 6 hours");
      assert.equal(asked.certificate?.renewAfter, meta0.certificate?.renewAfter, "the renewal time stands");
    } finally {
      await handle?.stop();
    }
  });

  it("gives each request to the CA its own deadline", async () => {
    const started = performance.now();
    const run = await orderFor("slow", ["x.slow.test"], { orderTimeoutMs: 60_000, acmeCallTimeoutMs: 300 });
    try {
      const failed = await until("the order to fail", failedOrder("x.slow.test"), 5000);
      assert.match(failed.attempts.lastError ?? "", /a request to the CA got no answer within 0\.3 s/);
      assert.ok(performance.now() - started < 5000);
    } finally {
      await run.stop();
    }
  });
});
