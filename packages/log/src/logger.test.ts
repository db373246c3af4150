import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { clockNow, createLogger, logFileFor } from "./index.ts";
import { INDEX_URL, runScript, tempDir, writeScript } from "./test/support.ts";

type Json = Record<string, unknown>;

async function readLines(path: string): Promise<Json[]> {
  const text = await readFile(path, "utf8");
  assert.ok(text.endsWith("\n"), "every record ends with a newline");
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Json);
}

function collector(): { stream: Writable; records: Json[] } {
  const records: Json[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") records.push(JSON.parse(line) as Json);
      callback();
    },
  });
  return { stream, records };
}

describe("createLogger", () => {
  let dir = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  after(() => cleanup());

  test("writes JSON lines with every required field to a file in new folders", async () => {
    const file = join(dir, "a", "b", "minion.log");
    const log = createLogger({ component: "minion", file });
    const before = clockNow();
    log.event("RECONCILE_DONE", { serviceId: "alice-blog", requestId: "req12345", ms: 12 }, "converged in 12 ms");
    log.info("plain message");
    log.warn({ attempt: 2 });
    log.debug("not written at the default level");
    await log.close();
    const after = clockNow();

    const records = await readLines(file);
    assert.equal(records.length, 3);
    for (const record of records) {
      assert.equal(typeof record.time, "number");
      assert.ok((record.time as number) >= before && (record.time as number) <= after, "time is from clockNow");
      assert.equal(typeof record.level, "string");
      assert.equal(record.component, "minion");
      assert.equal(record.pid, process.pid);
      assert.equal(typeof record.seq, "number");
      assert.equal(typeof record.msg, "string");
    }
    const [event, info, warn] = records;
    assert.deepEqual(
      { level: event?.level, event: event?.event, msg: event?.msg, svc: event?.serviceId, req: event?.requestId, ms: event?.ms },
      { level: "info", event: "RECONCILE_DONE", msg: "converged in 12 ms", svc: "alice-blog", req: "req12345", ms: 12 },
    );
    assert.deepEqual([info?.level, info?.msg, info?.event], ["info", "plain message", undefined]);
    assert.deepEqual([warn?.level, warn?.msg, warn?.attempt], ["warn", "", 2]);
    // The time has a microsecond fraction, not whole milliseconds.
    assert.ok(records.some((record) => !Number.isInteger(record.time)), "time carries a sub-millisecond fraction");
  });

  test("appends to an existing file rather than truncating it", async () => {
    const file = join(dir, "append.log");
    for (const n of [1, 2]) {
      const log = createLogger({ component: "c", file });
      log.info({ n }, "line");
      await log.close();
    }
    assert.deepEqual((await readLines(file)).map((r) => r.n), [1, 2]);
  });

  test("seq increases across every logger of the process and time never goes back", async () => {
    const { stream, records } = collector();
    const a = createLogger({ component: "a", destination: stream });
    const b = createLogger({ component: "b", destination: stream, level: "debug" });
    for (let i = 0; i < 500; i++) {
      a.event("REQUEST_RECEIVED", { i });
      b.debug({ i }, "tick");
    }
    await a.flush();
    assert.equal(records.length, 1000);
    for (let i = 1; i < records.length; i++) {
      const prev = records[i - 1];
      const cur = records[i];
      assert.ok(prev && cur);
      assert.ok((cur.seq as number) > (prev.seq as number), "seq increases");
      assert.ok((cur.time as number) >= (prev.time as number), "time never goes back");
    }
  });

  test("ERROR logs at error level with the error serialized, causes kept", async () => {
    const { stream, records } = collector();
    const log = createLogger({ component: "minion", destination: stream });
    const inner = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:53"), { code: "ECONNREFUSED" });
    log.event("ERROR", { err: new Error("loading dns zone example.org: upstream down", { cause: inner }) });
    log.event("ERROR", { err: new Error("outer", { cause: "a plain string" }) }, "explicit message");
    log.event("RECONCILE_FAILED", { err: new TypeError("bad spec") });
    await log.flush();

    const [first, second, third] = records;
    assert.ok(first && second && third);
    assert.equal(first.level, "error");
    assert.equal(first.event, "ERROR");
    assert.equal(first.msg, "loading dns zone example.org: upstream down", "the message defaults to the error's");
    const err = first.err as Json;
    assert.equal(err.type, "Error");
    assert.match(String(err.stack), /loading dns zone/);
    const cause = err.cause as Json;
    assert.equal(cause.message, "connect ECONNREFUSED 127.0.0.1:53");
    assert.equal(cause.code, "ECONNREFUSED");
    assert.equal(second.msg, "explicit message");
    assert.equal((second.err as Json).cause, "a plain string");
    assert.equal(third.level, "info", "only ERROR raises the level");
    assert.equal((third.err as Json).type, "TypeError");
  });

  test("secrets are redacted everywhere: fields, nested objects, headers, bindings", async () => {
    const file = join(dir, "secrets.log");
    const log = createLogger({ component: "crm", file, bindings: { apiKey: "BIND-APIKEY-1" } });
    log.info(
      {
        password: "HUNTER2-PASSWORD",
        token: "TOP-TOKEN-1",
        secret: "TOP-SECRET-1",
        apiKey: "TOP-APIKEY-1",
        authorization: "Bearer TOP-AUTH-1",
        user: { name: "alice", password: "NESTED-PASSWORD" },
        vultr: { apiKey: "NESTED-APIKEY", token: "NESTED-TOKEN", secret: "NESTED-SECRET" },
        headers: { authorization: "Bearer HEADER-AUTH", cookie: "sid=COOKIE-1", host: "example.org" },
        providers: [{ name: "namecheap", clientSecret: "ARRAY-SECRET" }],
        deep: { a: { b: { c: { privateKey: "DEEP-PRIVATEKEY-PASSWORD" } } } },
      },
      "signing in",
    );
    const original = { user: { password: "KEPT-BY-CALLER" } };
    log.warn(original);
    assert.equal(original.user.password, "KEPT-BY-CALLER", "the caller's object is not modified");
    const failure = Object.assign(new Error("provider call failed", { cause: Object.assign(new Error("401"), { apiKey: "ERR-CAUSE-APIKEY" }) }), {
      request: { headers: { Authorization: "Bearer ERR-AUTH" } },
    });
    log.event("ERROR", { err: failure });
    log.child({ token: "CHILD-TOKEN-1" }).event("REQUEST_SENT", { req: { headers: { authorization: "Basic DEEP-AUTH" } } });
    await log.close();

    const text = await readFile(file, "utf8");
    const secrets = [
      "BIND-APIKEY-1",
      "HUNTER2-PASSWORD",
      "TOP-TOKEN-1",
      "TOP-SECRET-1",
      "TOP-APIKEY-1",
      "TOP-AUTH-1",
      "NESTED-PASSWORD",
      "NESTED-APIKEY",
      "NESTED-TOKEN",
      "NESTED-SECRET",
      "HEADER-AUTH",
      "COOKIE-1",
      "ARRAY-SECRET",
      "DEEP-PRIVATEKEY-PASSWORD",
      "KEPT-BY-CALLER",
      "ERR-CAUSE-APIKEY",
      "ERR-AUTH",
      "CHILD-TOKEN-1",
      "DEEP-AUTH",
    ];
    for (const secret of secrets) assert.ok(!text.includes(secret), `${secret} reached the log file`);
    assert.equal(text.split("\n").filter((line) => line !== "").length, 4);
    const [first, , , second] = await readLines(file);
    assert.ok(first && second);
    assert.equal(first.password, "[redacted]");
    assert.equal((first.user as Json).name, "alice", "only secrets are redacted");
    assert.equal((first.headers as Json).host, "example.org");
    assert.equal(first.apiKey, "[redacted]");
    assert.equal(second.token, "[redacted]");
    assert.ok(text.includes('"providers":[{"name":"namecheap","clientSecret":"[redacted]"}]'));
    assert.ok(text.includes('"message":"provider call failed"'), "the error itself is still logged");
  });

  test("fields cannot overwrite the record's own keys nor forge an event", async () => {
    const { stream, records } = collector();
    const log = createLogger({ component: "proxy", destination: stream });
    log.info({ component: "minion", time: 1, seq: -1, pid: 7, level: "fatal", msg: "x", event: "SERVICE_UP" }, "hello");
    await log.flush();
    const [record] = records;
    assert.equal(record?.component, "proxy");
    assert.equal(record.level, "info");
    assert.equal(record.pid, process.pid);
    assert.equal(record.event, undefined);
    assert.equal(record.msg, "hello");
    assert.notEqual(record.time, 1);
    assert.equal(record._event, "SERVICE_UP");
    assert.equal(record._component, "minion");
  });

  test("child loggers bind fields and share the file; close makes later calls harmless", async () => {
    const file = join(dir, "child.log");
    const log = createLogger({ component: "snitch-proxy", file, bindings: { serverId: "s1" } });
    const request = log.child({ requestId: "req-abcdef12" });
    const service = request.child({ serviceId: "alice-blog" });
    request.event("REQUEST_RECEIVED", { path: "/" });
    service.event("REQUEST_SENT");
    log.info("%s stays literal");
    await service.close();
    assert.doesNotThrow(() => {
      log.info("after close");
      request.event("RESPONSE_SENT");
    });
    await log.flush();
    await log.close();
    const records = await readLines(file);
    assert.deepEqual(
      records.map((r) => [r.component, r.serverId, r.requestId, r.serviceId, r.event ?? r.msg]),
      [
        ["snitch-proxy", "s1", "req-abcdef12", undefined, "REQUEST_RECEIVED"],
        ["snitch-proxy", "s1", "req-abcdef12", "alice-blog", "REQUEST_SENT"],
        ["snitch-proxy", "s1", undefined, undefined, "%s stays literal"],
      ],
    );
  });

  test("level silent writes nothing", async () => {
    const { stream, records } = collector();
    const log = createLogger({ component: "quiet", destination: stream, level: "silent" });
    log.event("SERVICE_UP");
    log.error("nope");
    await log.flush();
    assert.equal(records.length, 0);
  });

  test("without a file or destination it writes to standard error, never standard output", async () => {
    const script = await writeScript(
      dir,
      "stderr",
      `import { createLogger } from ${JSON.stringify(INDEX_URL)};
const log = createLogger({ component: "cli" });
log.event("COMPONENT_STARTED", { n: 1 }, "to stderr");
process.stdout.write("cli output\\n");
`,
    );
    const result = await runScript(script);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "cli output\n");
    const record = JSON.parse(result.stderr.trim()) as Json;
    assert.equal(record.event, "COMPONENT_STARTED");
    assert.equal(record.component, "cli");
  });

  test("records survive a SIGKILL right after they were logged", async () => {
    const file = join(dir, "killed.log");
    const script = await writeScript(
      dir,
      "killed",
      `import { createLogger } from ${JSON.stringify(INDEX_URL)};
const log = createLogger({ component: "doomed", file: ${JSON.stringify(file)} });
for (let i = 0; i < 200; i++) log.event("RESULT_PRODUCED", { i });
log.event("COMPONENT_EXITED", {}, "last words");
process.kill(process.pid, "SIGKILL");
`,
    );
    const result = await runScript(script);
    assert.equal(result.signal, "SIGKILL", result.stderr);
    const records = await readLines(file);
    assert.equal(records.length, 201);
    assert.equal(records.at(-1)?.msg, "last words");
  });

  test("synchronous file writes are not absurdly slow", async (t) => {
    const file = join(dir, "speed.log");
    const log = createLogger({ component: "bench", file });
    const count = 20_000;
    const started = performance.now();
    for (let i = 0; i < count; i++) log.event("REQUEST_RECEIVED", { i, requestId: "abcdefgh12345678", path: "/index.html" });
    const elapsed = performance.now() - started;
    await log.close();
    const perSecond = Math.round(count / (elapsed / 1000));
    t.diagnostic(`${count} records in ${elapsed.toFixed(0)} ms: ${perSecond} records/s`);
    assert.equal((await readLines(file)).length, count);
    // A write(2) per record manages tens of thousands a second; an fsync per record would not.
    assert.ok(perSecond > 5_000, `only ${perSecond} records/s`);
  });

  test("rejects an empty component", () => {
    assert.throws(() => createLogger({ component: "" }), /component must not be empty/);
  });
});

describe("logFileFor", () => {
  test("places a component's log in <state>/logs/<component>.log", () => {
    assert.equal(logFileFor("/var/lib/coyote", "minion"), "/var/lib/coyote/logs/minion.log");
    assert.equal(logFileFor(".coyote", "docker-activator"), join(".coyote", "logs", "docker-activator.log"));
  });

  test("refuses a component name that would escape the folder", () => {
    for (const bad of ["../etc/passwd", "a/b", "", ".hidden"]) assert.throws(() => logFileFor("/s", bad), /log file for component/);
  });
});
