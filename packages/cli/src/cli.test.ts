import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer as createNetServer, type Server } from "node:net";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, logFileFor, mergeTimeline } from "@coyote/log";
import { ServiceStatus, StateStore } from "@coyote/spec";
import { freePorts, tempDirs } from "@coyote/testing";
import { checkDocker, checkNode, checkPorts } from "./commands/doctor.ts";
import { parseTime } from "./commands/logs.ts";
import { packagesWithTests, summaryLine } from "./commands/test.ts";
import { newActivationToken } from "./commands/activation.ts";
import { EXIT } from "./errors.ts";
import { cli, HOME } from "./test/support.ts";

const tempDir = tempDirs("coyote-cli-");

/** Waits for a condition, failing with what `describe` says after the timeout. */
/** GET / over TLS from 127.0.0.1:port with SNI and Host `host`, trusting `ca`. */
function fetchOverTls(port: number, host: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsGet({ host: "127.0.0.1", port, path: "/", servername: host, headers: { host }, ca, timeout: 5000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

async function until(check: () => boolean, timeoutMs: number, describe: () => string = () => "", poll: () => Promise<void> = () => Promise.resolve()): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await poll();
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await sleep(20);
    await poll();
  }
}

/** A digest of every file (path, mode and content) under a folder: equal digests mean nothing changed. */
function treeDigest(root: string): string {
  const hash = createHash("sha256");
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const info = statSync(path);
      hash.update(`${relative(root, path)} ${info.mode}\n`);
      if (info.isDirectory()) walk(path);
      else hash.update(readFileSync(path));
    }
  };
  walk(root);
  return hash.digest("hex");
}

function service(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { schemaVersion: 1, kind: "Service", id, domains: [{ name: `${id}.example` }], ...extra };
}

function writeJson(dir: string, name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe("coyote spec", () => {
  test("apply, get, list, history, unchanged re-apply, diff and rollback", async () => {
    const state = tempDir();
    const files = tempDir();
    const v1 = writeJson(files, "blog-v1.json", service("blog"));
    const v2 = writeJson(files, "blog-v2.json", service("blog", { description: "my blog" }));

    let r = await cli(state, "spec", "apply", v1);
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^applied blog: generation 1, revision [0-9a-f]{12}$/);
    const firstRev = /revision ([0-9a-f]+)/.exec(r.out)?.[1] ?? "";

    r = await cli(state, "spec", "apply", v1);
    assert.equal(r.code, EXIT.OK);
    assert.match(r.out, /^unchanged blog: generation 1/);

    r = await cli(state, "spec", "apply", v2, "-m", "describe the blog");
    assert.match(r.out, /^applied blog: generation 2/);

    r = await cli(state, "spec", "get", "blog");
    assert.equal(r.code, EXIT.OK);
    const got = JSON.parse(r.out) as { description?: string; generation?: number };
    assert.equal(got.description, "my blog");
    assert.equal(got.generation, 2);

    r = await cli(state, "spec", "list");
    assert.match(r.out, /blog\s+Service\s+2/);

    r = await cli(state, "spec", "history", "blog");
    const lines = r.out.split("\n");
    assert.match(lines[0] ?? "", /^REVISION\s+DATE\s+AUTHOR\s+MESSAGE$/);
    assert.match(lines[1] ?? "", /Test Admin <admin@example\.org>\s+describe the blog$/);
    assert.equal(lines.length, 3, "two changes to blog");

    r = await cli(state, "spec", "diff", firstRev);
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^\+\+\+ .*services\/blog\.json$/m, "the diff of the first revision shows the spec it added");
    assert.match(r.out, /^\+ *"id": "blog",?$/m);

    r = await cli(state, "spec", "rollback", firstRev);
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /^rolled back to [0-9a-f]+ as revision [0-9a-f]{12}/);
    r = await cli(state, "spec", "get", "blog");
    assert.equal((JSON.parse(r.out) as { description?: string }).description, undefined);
  });

  test("apply of an invalid file exits 3, names the file and the field, and changes nothing on disk", async () => {
    const state = tempDir();
    const files = tempDir();
    assert.equal((await cli(state, "spec", "apply", writeJson(files, "good.json", service("shop")))).code, EXIT.OK);
    const before = treeDigest(state);
    const bad = writeJson(files, "bad.json", service("shop", { domains: [{ name: "not a domain" }] }));
    const r = await cli(state, "spec", "apply", bad);
    assert.equal(r.code, EXIT.INVALID);
    assert.match(r.err, new RegExp(`^coyote: invalid: ${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: domains\\[0\\]\\.name: not a valid domain name`));
    assert.equal(treeDigest(state), before, "the state folder is untouched");

    const torn = join(files, "torn.json");
    writeFileSync(torn, '{"schemaVersion": 1, "kind": "Serv');
    const t = await cli(state, "spec", "apply", torn);
    assert.equal(t.code, EXIT.INVALID);
    assert.match(t.err, /torn\.json: \(root\): not valid JSON/);

    const missing = await cli(state, "spec", "apply", join(files, "nope.json"));
    assert.equal(missing.code, EXIT.NOT_FOUND);
    assert.match(missing.err, /cannot read .*nope\.json: no such file/);
    assert.equal(treeDigest(state), before);
  });

  test("the real ./coyote executable refuses an invalid spec the same way", () => {
    const state = tempDir();
    const files = tempDir();
    const bad = writeJson(files, "bad.json", { schemaVersion: 1, kind: "Service", id: "Bad Id", domains: [{ name: "ok.example" }] });
    const result = spawnSync(join(HOME, "coyote"), ["spec", "apply", bad], { env: { ...process.env, COYOTE_STATE: state }, encoding: "utf8" });
    assert.equal(result.status, EXIT.INVALID, result.stderr);
    assert.match(result.stderr, /bad\.json: id: not a valid service id: "Bad Id"/);
    assert.deepEqual(readdirSync(state), [], "nothing was created");
  });

  test("get of an unknown id exits 4; a bad revision exits 4 or 3 and changes nothing", async () => {
    const state = tempDir();
    assert.equal((await cli(state, "spec", "get", "ghost")).code, EXIT.NOT_FOUND);
    await cli(state, "spec", "list");
    const before = treeDigest(state);
    const r = await cli(state, "spec", "rollback", "deadbeef");
    assert.ok(r.code === EXIT.NOT_FOUND || r.code === EXIT.INVALID, `exit ${r.code}`);
    assert.match(r.err, /deadbeef/);
    const inject = await cli(state, "spec", "rollback", "--", "--output=/tmp/x");
    assert.notEqual(inject.code, EXIT.OK);
    assert.equal(treeDigest(state), before);
  });
});

describe("coyote status", () => {
  test("shows each service with its conditions, an unobserved one, and the components", async () => {
    const state = tempDir();
    const files = tempDir();
    await cli(state, "spec", "apply", writeJson(files, "a.json", service("alpha")));
    await cli(state, "spec", "apply", writeJson(files, "b.json", service("beta")));
    const store = await StateStore.open(state);
    const now = new Date().toISOString();
    await store.writeJson("status/alpha.json", ServiceStatus, {
      schemaVersion: 1,
      id: "alpha",
      observedGeneration: 1,
      updatedAt: now,
      conditions: [{ type: "Ready", status: "False", reason: "DnsPending", message: "zone not served yet", observedGeneration: 1, lastTransitionTime: now }],
    });
    const r = await cli(state, "status");
    assert.equal(r.code, EXIT.OK, r.err);
    assert.match(r.out, /alpha\s+1\s+1\s+Ready=False \(DnsPending: zone not served yet\)/);
    assert.match(r.out, /beta\s+1\s+-\s+not observed yet/);
    assert.match(r.out, /minion\s+stopped\s+never started here/);
    assert.match(r.out, /docker-activator\s+stopped\s+never started here/);
    assert.match(r.out, /coyote-crm\s+stopped\s+never started here/);
    assert.match(r.out, /coyote-listener\s+not built\s+arrives with the buddy protocol/);
    const json = JSON.parse((await cli(state, "status", "--json")).out) as { services: { id: string }[] };
    assert.deepEqual(json.services.map((s) => s.id), ["alpha", "beta"]);
  });
});

describe("coyote logs", () => {
  test("--timeline merges three components' logs in time order and filters", async () => {
    const state = tempDir();
    const loggers = ["minion", "snitch-proxy", "docker-activator"].map((component) => createLogger({ component, file: logFileFor(state, component) }));
    const [minion, proxy, activator] = loggers;
    assert.ok(minion && proxy && activator);
    minion.event("RECONCILE_STARTED", { serviceId: "blog" });
    proxy.event("REQUEST_RECEIVED", { requestId: "req-00000001", host: "blog.example" });
    activator.event("SERVICE_UP", { serviceId: "blog", requestId: "req-00000001" });
    proxy.event("RESPONSE_SENT", { requestId: "req-00000001", status: 200 });
    minion.event("RECONCILE_DONE", { serviceId: "blog" });
    for (const logger of loggers) await logger.close();

    const r = await cli(state, "logs", "--timeline");
    assert.equal(r.code, EXIT.OK, r.err);
    const events = r.out.split("\n").map((line) => /(RECONCILE_STARTED|REQUEST_RECEIVED|SERVICE_UP|RESPONSE_SENT|RECONCILE_DONE)/.exec(line)?.[1]);
    assert.deepEqual(events, ["RECONCILE_STARTED", "REQUEST_RECEIVED", "SERVICE_UP", "RESPONSE_SENT", "RECONCILE_DONE"]);

    const byRequest = await cli(state, "logs", "--timeline", "--json", "--request", "req-00000001");
    assert.deepEqual(byRequest.out.split("\n").map((l) => (JSON.parse(l) as { event: string }).event), ["REQUEST_RECEIVED", "SERVICE_UP", "RESPONSE_SENT"]);
    const bad = await cli(state, "logs", "--event", "NOPE");
    assert.equal(bad.code, EXIT.USAGE);
    assert.match(bad.err, /unknown event "NOPE"/);
  });

  test("times are ISO or ages", () => {
    assert.equal(parseTime("10m", "--since", 1_000_000), 400_000);
    assert.equal(parseTime("2026-11-22T00:00:00Z", "--since"), Date.parse("2026-11-22T00:00:00Z"));
    assert.throws(() => parseTime("yesterday", "--since"), /--since: expected an ISO 8601 time/);
  });
});

describe("coyote doctor", () => {
  test("node version", () => {
    assert.equal(checkNode("24.1.0").result, "ok");
    const old = checkNode("20.20.2");
    assert.equal(old.result, "fail");
    assert.match(old.fix ?? "", /\.\/coyote/);
  });

  test("a Docker engine socket that answers /_ping is found; a missing one is a warning with a fix", async () => {
    const dir = tempDir();
    const socketPath = join(dir, "docker.sock");
    const engine = createHttpServer((req, res) => res.end(req.url === "/_ping" ? "OK" : "")).listen(socketPath);
    await new Promise((r) => engine.once("listening", r));
    try {
      assert.equal((await checkDocker(socketPath)).result, "ok");
    } finally {
      engine.close();
    }
    const missing = await checkDocker(join(dir, "none.sock"));
    assert.equal(missing.result, "warn");
    assert.match(missing.detail, /no such socket/);
    assert.match(missing.fix ?? "", /apt-get install docker\.io/);
  });

  test("a port in use is a failure naming it, and exit code 6", async () => {
    const state = tempDir();
    const files = tempDir();
    const blocker: Server = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const address = blocker.address();
    assert.ok(address && typeof address === "object");
    const port = address.port;
    try {
      const server = { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", ports: { panel: port, http: 18080, https: 18443 }, dns: { listen: ["127.0.0.1:15353"] } };
      assert.equal((await cli(state, "spec", "apply", writeJson(files, "server.json", server))).code, EXIT.OK);
      const checks = await checkPorts(state);
      const panel = checks.find((c) => c.detail.includes(`:${port}`));
      assert.equal(panel?.result, "fail");
      assert.match(panel.fix ?? "", new RegExp(`:${port}`));
      const r = await cli(state, "doctor");
      assert.equal(r.code, EXIT.MISSING);
      assert.match(r.out, new RegExp(`FAIL\\s+port\\s+panel tcp 127\\.0\\.0\\.1:${port} is in use`));
    } finally {
      blocker.close();
    }
  });
});

describe("coyote up, run and usage", () => {
  test("./coyote up starts the built components in their own processes, prints a stable 0600 token, and stops on SIGTERM", { timeout: 120_000 }, async () => {
    const state = tempDir();
    const files = tempDir();
    const [http, https, panel, dns] = await freePorts(4);
    const server = { schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org", ports: { http, https, panel }, dns: { listen: [`127.0.0.1:${dns}`] } };
    assert.equal((await cli(state, "spec", "apply", writeJson(files, "server.json", server))).code, EXIT.OK);

    const runUp = async (check: (out: string, pid: number) => Promise<void>) => {
      const child = spawn(join(HOME, "coyote"), ["up", "--no-build"], { env: { ...process.env, COYOTE_STATE: state }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      try {
        await until(() => out.includes("running minion"), 60_000, () => `${out}\n${err}`);
        await check(out, child.pid ?? 0);
      } finally {
        child.kill("SIGTERM");
      }
      assert.equal(await exited, 0, `coyote up stops cleanly on SIGTERM: ${err}`);
      return out;
    };

    const first = await runUp(async (out, pid) => {
      assert.match(out, new RegExp(`panel: http://127\\.0\\.0\\.1:${panel}/`));
      // The supervisor itself runs from the build too (./coyote runs it with no TypeScript loader).
      const supervisor = readFileSync(`/proc/${String(pid)}/cmdline`, "utf8").split("\0");
      assert.deepEqual(supervisor.slice(1, 3), [join(HOME, "dist", "coyote.mjs"), "up"], supervisor.join(" "));
      assert.match(out, /coyote-crm\s+starting/);
      // The panel answers; a box that is not activated sends every page to the activation wizard.
      const ask = () => fetch(`http://127.0.0.1:${panel}/admin`, { redirect: "manual" }).catch(() => undefined);
      let answer = await ask();
      for (const deadline = Date.now() + 60_000; answer === undefined && Date.now() < deadline; answer = await ask()) await sleep(100);
      assert.ok(answer, "the panel answers within 60 s");
      assert.equal(answer.status, 303);
      assert.equal(answer.headers.get("location"), "/activate");
      assert.match(out, /snitch-proxy\s+starting/);
      assert.match(out, /minion\s+starting/);
      // The minion runs in its own process and reports itself; coyote status sees it.
      await until(() => existsSync(join(state, "stats", "minion.json")), 30_000);
      const stats = JSON.parse(readFileSync(join(state, "stats", "minion.json"), "utf8")) as { pid: number };
      assert.notEqual(stats.pid, process.pid);
      const status = await cli(state, "status");
      assert.match(status.out, /minion\s+running\s+pid \d+/);
      // A service spec applied while it runs is converged by the minion and shows up Ready.
      // A static site is served from the service's own folder, sites/<id>.
      const site = join(state, "sites", "blog");
      mkdirSync(site, { recursive: true });
      writeFileSync(join(site, "index.html"), "<h1>blog</h1>\n");
      const blog = { schemaVersion: 1, kind: "Service", id: "blog", domains: [{ name: "blog.example", records: [{ type: "A", address: "192.0.2.5" }] }], web: { hostnames: ["blog.example"], backend: { kind: "static", root: "." } } };
      assert.equal((await cli(state, "spec", "apply", writeJson(files, "blog.json", blog))).code, EXIT.OK);
      let shown = "";
      await until(() => /blog\s+1\s+1\s+SpecValid=True.*DnsReady=True.*WebReady=True.*Ready=True/.test(shown), 30_000, () => shown, async () => {
        shown = (await cli(state, "status")).out;
      });
      // The proxy's workers start alongside; it reports itself once all of them listen.
      await until(() => /snitch-proxy\s+running\s+pid \d+/.test(shown), 30_000, () => shown, async () => {
        shown = (await cli(state, "status")).out;
      });
      // The site answers over HTTPS through snitch-proxy, with a certificate of the box's own CA.
      let page = "";
      await until(() => page === "<h1>blog</h1>\n", 30_000, () => page, async () => {
        page = await fetchOverTls(Number(https), "blog.example", readFileSync(join(state, "proxy", "ca", "ca.pem"), "utf8")).catch((error: unknown) => String(error));
      });
    });
    const token = /activation token: ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})/.exec(first)?.[1];
    assert.ok(token, first);
    const secret = join(state, "secrets", "activation-token");
    assert.equal(statSync(secret).mode & 0o777, 0o600);
    assert.equal(readFileSync(secret, "utf8").trim(), token);

    const second = await runUp(() => Promise.resolve());
    assert.ok(second.includes(token), "the same token until activation");
    const { records } = await mergeTimeline([logFileFor(state, "supervisor"), logFileFor(state, "minion")]);
    assert.ok(records.some((r) => r.component === "supervisor" && r.event === "COMPONENT_STARTED"));
    assert.ok(records.some((r) => r.component === "minion" && r.event === "SERVICE_DOWN"), "the minion was stopped cleanly");
  });

  test("tokens are 100 random bits in Crockford base32", () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => newActivationToken()));
    assert.equal(tokens.size, 1000);
    for (const t of tokens) assert.match(t, /^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$/);
  });

  test("run of a component not built yet exits 6 and says where it is built; an unknown one exits 2", async () => {
    const state = tempDir();
    const r = await cli(state, "run", "coyote-listener");
    assert.equal(r.code, EXIT.MISSING);
    assert.match(r.err, /coyote-listener is not built yet \(the buddy protocol\)/);
    assert.equal((await cli(state, "run", "toaster")).code, EXIT.USAGE);
  });

  test("unknown commands and options exit 2; --help exits 0 everywhere", async () => {
    const state = tempDir();
    assert.equal((await cli(state, "frobnicate")).code, EXIT.USAGE);
    assert.equal((await cli(state, "spec", "apply")).code, EXIT.USAGE);
    assert.equal((await cli(state, "status", "--bogus")).code, EXIT.USAGE);
    for (const args of [["--help"], ["up", "--help"], ["spec", "--help"], ["spec", "apply", "--help"], ["spec", "rollback", "--help"], ["logs", "--help"], ["doctor", "--help"], ["test", "--help"], ["status", "--help"]]) {
      const r = await cli(state, ...args);
      assert.equal(r.code, EXIT.OK, `${args.join(" ")}: ${r.err}`);
      assert.match(r.out, /Usage: coyote/);
    }
  });
});

describe("coyote test", () => {
  test("the closing line adds up every part", () => {
    assert.equal(summaryLine([
      { name: "a", passed: 3, failed: 1, skipped: 0, failures: ["x"] },
      { name: "b", passed: 4, failed: 0, skipped: 2, failures: [] },
    ]), "7 passed, 1 failed");
  });

  test("finds the packages that have tests", async () => {
    const found = await packagesWithTests(HOME);
    for (const dir of ["packages/spec", "packages/log", "packages/cli", "packages/component", "integration"]) assert.ok(found.includes(dir), `${dir} in ${found.join()}`);
    assert.ok(!found.includes("e2e") && !found.includes("bench"), "e2e runs as its own step; bench has no tests");
  });
});
