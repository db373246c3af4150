import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError, converge, isActuator } from "@coyote/actuator";
import type { ActuatorContext, Target } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import { ActivatorUnits, parseJson, ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { createBackendsActuator, FRAGMENTS_DIR, planBackends, UNITS_FILE } from "./actuator.ts";
import type { BackendsObserved } from "./actuator.ts";

function server(runtime: "auto" | "docker" | "process" = "auto"): ServerSpec {
  return ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.test.example", runtime });
}

function service(id: string, backend: Record<string, unknown> | undefined): ServiceSpec {
  return ServiceSpec.parse({
    schemaVersion: 1,
    kind: "Service",
    id,
    domains: [{ name: `${id}.test.example` }],
    ...(backend === undefined ? {} : { web: { hostnames: [`${id}.test.example`], backend } }),
  });
}

const container = (port: number, extra: Record<string, unknown> = {}) => ({ kind: "container", image: "coyote-test/busybox:1", command: ["httpd", "-f", "-p", `127.0.0.1:${port}`], port, ...extra });
const processBackend = (port: number) => ({ kind: "process", command: ["/usr/bin/busybox", "httpd", "-f", "-p", `127.0.0.1:${port}`], port, idleTimeoutSeconds: 60 });

const emptyObserved: BackendsObserved = { fragment: undefined, fragmentExists: false, combined: undefined, addresses: {}, settings: undefined };

describe("the backends actuator's plan", () => {
  it("is pure: the same input gives the same plan, and the input is not changed", () => {
    const target: Target = { id: "blog", spec: service("blog", container(18080)) };
    const frozen = structuredClone(target);
    const first = planBackends(target, emptyObserved, server());
    const second = planBackends(target, emptyObserved, server());
    assert.deepEqual(first, second);
    assert.deepEqual(target, frozen);
    assert.equal(first.steps[0]?.kind, "write-fragment");
  });

  it("maps a container backend to a docker unit on auto and docker, with the spec's defaults filled in", () => {
    for (const runtime of ["auto", "docker"] as const) {
      const plan = planBackends({ id: "blog", spec: service("blog", container(18080, { env: { MODE: "prod" } })) }, emptyObserved, server(runtime));
      const step = plan.steps[0];
      assert.ok(step?.kind === "write-fragment");
      assert.equal(step.unit.runtime, "docker");
      assert.equal(step.unit.image, "coyote-test/busybox:1");
      assert.equal(step.unit.host, "127.0.0.1");
      assert.equal(step.unit.port, 18080);
      assert.deepEqual(step.unit.env, { MODE: "prod" });
      assert.equal(step.unit.idleTimeoutSeconds, 900);
      assert.deepEqual(step.unit.readiness, { kind: "tcp" });
    }
  });

  it("maps a process backend to a process unit whatever the server's runtime", () => {
    for (const runtime of ["auto", "docker", "process"] as const) {
      const step = planBackends({ id: "app", spec: service("app", processBackend(18081)) }, emptyObserved, server(runtime)).steps[0];
      assert.ok(step?.kind === "write-fragment");
      assert.equal(step.unit.runtime, "process");
      assert.deepEqual(step.unit.command, ["/usr/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:18081"]);
    }
  });

  it("refuses a container backend on a process-only server with a terminal error saying why", () => {
    assert.throws(
      () => planBackends({ id: "blog", spec: service("blog", container(18080)) }, emptyObserved, server("process")),
      (error: unknown) => error instanceof ActuatorError && error.terminal && error.reason === "RuntimeUnavailable" && /runtime is "process".*cannot run the container image coyote-test\/busybox:1/.test(error.message),
    );
  });

  it("refuses, for now, an address another service's backend has", () => {
    assert.throws(
      () => planBackends({ id: "blog", spec: service("blog", container(18080)) }, { ...emptyObserved, addresses: { "127.0.0.1:18080": "shop" } }, server()),
      (error: unknown) => error instanceof ActuatorError && !error.terminal && error.reason === "PortTaken" && error.message.includes("service shop"),
    );
  });

  it("refuses, for good, a port the box's own daemons use, naming what uses it", () => {
    const custom = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.test.example", ports: { http: 18000, https: 18443, panel: 13000 }, dns: { listen: ["127.0.0.1:15353"] }, mail: { smtpListen: "127.0.0.1:12525" } });
    const cases: Array<[number, RegExp]> = [
      [25, /SMTP/], [53, /DNS/], [80, /HTTP/], [443, /HTTPS/], [465, /SMTP/], [587, /SMTP/], [993, /IMAPS/], [995, /POP3S/], [110, /POP3/], [143, /IMAP/], [5222, /XMPP/], [5269, /XMPP/], [5280, /XMPP/],
      [18000, /ports\.http/], [18443, /ports\.https/], [13000, /ports\.panel/], [15353, /dns\.listen/], [12525, /mail\.smtpListen/],
    ];
    for (const [port, what] of cases) {
      for (const backend of [container(port), processBackend(port)]) {
        assert.throws(
          () => planBackends({ id: "greedy", spec: service("greedy", backend) }, emptyObserved, custom),
          (error: unknown) => error instanceof ActuatorError && error.terminal && error.reason === "PortReserved" && error.message.includes(`port ${port} is reserved for`) && what.test(error.message),
          `port ${port}`,
        );
      }
    }
    // The defaults of a spec that does not name them are reserved too.
    assert.throws(() => planBackends({ id: "greedy", spec: service("greedy", container(3000)) }, emptyObserved, server()), /reserved for the panel/);
    assert.equal(planBackends({ id: "fine", spec: service("fine", container(18080)) }, emptyObserved, custom).steps[0]?.kind, "write-fragment");
  });

  it("has nothing to do for a service without a sleeping backend and no fragment", () => {
    assert.deepEqual(planBackends({ id: "site", spec: service("site", { kind: "static", root: "." }) }, emptyObserved, server()).steps, []);
    assert.deepEqual(planBackends({ id: "gone", spec: undefined }, emptyObserved, server()).steps, []);
  });
});

describe("the backends actuator against a state folder", () => {
  let root = "";
  let context: ActuatorContext;
  let closeLogger = async () => {};
  const actuator = createBackendsActuator({ stateDir: "" });

  before(async () => {
    root = await mkdtemp(join(tmpdir(), "coyote-backends-test-"));
    const store = await StateStore.open(root);
    const logger = createLogger({ component: "minion", file: join(root, "logs", "backends-test.log"), level: "debug" });
    closeLogger = () => logger.close();
    context = { stateDir: store.root, store, logger, signal: new AbortController().signal, server: server() };
  });

  after(async () => {
    await closeLogger();
    await rm(root, { recursive: true, force: true });
  });

  const make = () => createBackendsActuator({ stateDir: context.stateDir });
  const readUnits = async () => parseJson(ActivatorUnits, await readFile(join(context.stateDir, UNITS_FILE), "utf8"), UNITS_FILE);

  it("is an actuator with a namespaced id, the BackendReady condition, and applies to container and process backends only", () => {
    assert.ok(isActuator(actuator));
    assert.ok(actuator.appliesTo !== undefined);
    assert.equal(actuator.condition, "BackendReady");
    assert.equal(actuator.appliesTo(service("a", container(18080))), true);
    assert.equal(actuator.appliesTo(service("b", processBackend(18081))), true);
    assert.equal(actuator.appliesTo(service("c", { kind: "upstream", address: "127.0.0.1:9000" })), false);
    assert.equal(actuator.appliesTo(service("d", undefined)), false);
  });

  it("writes one fragment per service and combines them into units.json once, in commit", async () => {
    const backends = make();
    const blog = await converge(backends, { id: "blog", spec: service("blog", container(18080)) }, context);
    const app = await converge(backends, { id: "app", spec: service("app", processBackend(18081)) }, context);
    assert.ok(blog.changed && app.changed);
    assert.deepEqual((await readdir(join(context.stateDir, FRAGMENTS_DIR))).sort(), ["app.json", "blog.json"]);
    await assert.rejects(stat(join(context.stateDir, UNITS_FILE)), /ENOENT/, "nothing is combined before the commit");
    await backends.commit?.(context);
    const units = await readUnits();
    assert.deepEqual(units.units.map((u) => [u.id, u.runtime]), [["app", "process"], ["blog", "docker"]]);
  });

  it("is converged on a second pass and a commit without changes does not rewrite the file", async () => {
    const backends = make();
    const before = await stat(join(context.stateDir, UNITS_FILE));
    for (const [id, backend] of [["blog", container(18080)], ["app", processBackend(18081)]] as const) {
      const result = await converge(backends, { id, spec: service(id, backend) }, context);
      assert.equal(result.changed, false, `${id} is converged`);
    }
    await backends.commit?.(context);
    const afterStat = await stat(join(context.stateDir, UNITS_FILE));
    assert.equal(afterStat.ino, before.ino);
    assert.equal(afterStat.mtimeMs, before.mtimeMs);
  });

  it("rebuilds units.json when a commit was lost after an apply", async () => {
    const backends = make();
    const doc = await readUnits();
    await writeFile(join(context.stateDir, UNITS_FILE), `${JSON.stringify({ ...doc, units: doc.units.filter((u) => u.id !== "blog") })}\n`);
    const result = await converge(backends, { id: "blog", spec: service("blog", container(18080)) }, context);
    assert.deepEqual(result.plan.steps, [{ kind: "refresh-combined" }]);
    await backends.commit?.(context);
    assert.deepEqual((await readUnits()).units.map((u) => u.id), ["app", "blog"]);
  });

  it("updates a changed unit", async () => {
    const backends = make();
    const result = await converge(backends, { id: "blog", spec: service("blog", container(18080, { idleTimeoutSeconds: 5 })) }, context);
    assert.ok(result.changed);
    await backends.commit?.(context);
    assert.equal((await readUnits()).units.find((u) => u.id === "blog")?.idleTimeoutSeconds, 5);
  });

  it("carries the server spec's runtime and memory budget into units.json, and rewrites it when they change", async () => {
    const backends = make();
    const first = await readUnits();
    assert.deepEqual([first.runtime, first.memoryBudgetMb], ["auto", 2048], "the server spec's values, written by the last commit");
    const changed = { ...context, server: ServerSpec.parse({ ...server("docker"), limits: { memoryBudgetMb: 512, maxConnections: 10000 } }) };
    const result = await converge(backends, { id: "blog", spec: service("blog", container(18080, { idleTimeoutSeconds: 5 })) }, changed);
    assert.deepEqual(result.plan.steps, [{ kind: "refresh-combined" }], "units.json lags behind the server spec");
    await backends.commit?.(changed);
    const units = await readUnits();
    assert.deepEqual([units.runtime, units.memoryBudgetMb], ["docker", 512]);
    await backends.commit?.(context);
  });

  it("removes a deleted service's unit, and that of a service whose backend is no longer sleeping-capable", async () => {
    const backends = make();
    assert.ok((await converge(backends, { id: "app", spec: undefined }, context)).changed);
    assert.ok((await converge(backends, { id: "blog", spec: service("blog", { kind: "static", root: "." }) }, context)).changed);
    await backends.commit?.(context);
    assert.deepEqual((await readUnits()).units, []);
    assert.deepEqual(await readdir(join(context.stateDir, FRAGMENTS_DIR)), []);
  });

  it("names the environment secret in the unit and never writes its values to units.json", async () => {
    const backends = make();
    await context.store.writeSecret("env-vault-0123456789ab", JSON.stringify({ API_TOKEN: "from-secrets" }));
    await converge(backends, { id: "vault", spec: service("vault", container(18099, { envSecret: "env-vault-0123456789ab", env: { MODE: "prod" } })) }, context);
    await backends.commit?.(context);
    const unit = (await readUnits()).units.find((u) => u.id === "vault");
    assert.deepEqual([unit?.env, unit?.envSecret], [{ MODE: "prod" }, "env-vault-0123456789ab"]);
    assert.doesNotMatch(await readFile(join(context.stateDir, UNITS_FILE), "utf8"), /from-secrets/);
    await assert.rejects(
      backends.observe({ id: "vault", spec: service("vault", container(18099, { envSecret: "env-vault-ffffffffffff" })) }, context),
      (error: unknown) => error instanceof ActuatorError && error.terminal && /env-vault-ffffffffffff is missing/.test(error.message),
    );
    await converge(backends, { id: "vault", spec: undefined }, context);
    await backends.commit?.(context);
  });

  it("leaves out an invalid fragment and keeps the others", async () => {
    const backends = make();
    await converge(backends, { id: "blog", spec: service("blog", container(18080)) }, context);
    await writeFile(join(context.stateDir, FRAGMENTS_DIR, "broken.json"), "{ not json");
    await backends.commit?.(context);
    assert.deepEqual((await readUnits()).units.map((u) => u.id), ["blog"]);
    const observed = await backends.observe({ id: "broken", spec: undefined }, context);
    assert.equal(observed.fragment, undefined);
    assert.ok(observed.fragmentExists);
    assert.deepEqual(backends.plan({ id: "broken", spec: undefined }, observed, context.server).steps, [{ kind: "remove-fragment" }]);
  });
});
