import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LogRecord } from "./index.ts";
import { compareRecords, createLogger, logFileFor, logFilesIn, mergeTimeline, readLogFile } from "./index.ts";
import { tempDir } from "./test/support.ts";

const T0 = 1_795_000_000_000.125;

function line(record: Partial<LogRecord> & { time: number; component: string }): string {
  return JSON.stringify({ level: "info", pid: 100, seq: 0, msg: "", ...record });
}

async function writeLog(path: string, records: readonly (Partial<LogRecord> & { time: number; component: string })[], tail = ""): Promise<string> {
  await writeFile(path, records.map((record) => line(record) + "\n").join("") + tail);
  return path;
}

describe("timeline", () => {
  let dir = "";
  let cleanup: () => Promise<void> = () => Promise.resolve();
  before(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  after(() => cleanup());

  test("readLogFile reports a torn last line and non-JSON lines instead of throwing", async () => {
    const path = await writeLog(
      join(dir, "torn.log"),
      [
        { time: T0, component: "minion", seq: 1, event: "RECONCILE_STARTED" },
        { time: T0 + 1, component: "minion", seq: 2, event: "RECONCILE_DONE" },
      ],
      'not json at all\n[1,2,3]\n{"level":"info","msg":"no time"}\n\n' + line({ time: T0 + 2, component: "minion", seq: 3 }) + '\n{"level":"info","time":17950',
    );
    const warnings: string[] = [];
    const records: LogRecord[] = [];
    for await (const record of readLogFile(path, warnings)) records.push(record);
    assert.deepEqual(
      records.map((r) => r.seq),
      [1, 2, 3],
    );
    assert.deepEqual(warnings, [
      `${path}:3: not JSON`,
      `${path}:4: not a JSON object`,
      `${path}:5: no numeric time`,
      `${path}:8: torn last line (28 characters), left by an interrupted write`,
    ]);
    // Without a warnings array the bad lines are still skipped quietly.
    let count = 0;
    for await (const _ of readLogFile(path)) count += 1;
    assert.equal(count, 3);
  });

  test("readLogFile keeps a whole last record that only lost its newline, and reads plain pino lines", async () => {
    const path = join(dir, "snitch-proxy.log.2");
    await writeFile(path, '{"level":30,"time":1795000000000,"pid":9,"hostname":"h","msg":"plain pino"}\n' + line({ time: T0, component: "x", seq: 5 }));
    const warnings: string[] = [];
    const records: LogRecord[] = [];
    for await (const record of readLogFile(path, warnings)) records.push(record);
    assert.deepEqual(warnings, []);
    assert.equal(records.length, 2);
    assert.deepEqual(
      [records[0]?.level, records[0]?.component, records[0]?.seq, records[0]?.hostname],
      ["info", "snitch-proxy", 0, "h"],
      "numeric level becomes its label; component comes from the file name",
    );
    assert.equal(records[1]?.seq, 5);
  });

  test("readLogFile moves an event outside the vocabulary aside, with one warning", async () => {
    const path = await writeLog(join(dir, "future.log"), [
      { time: T0, component: "c", event: "WARP_DRIVE" as never },
      { time: T0 + 1, component: "c", event: "WARP_DRIVE" as never },
    ]);
    const warnings: string[] = [];
    const records: LogRecord[] = [];
    for await (const record of readLogFile(path, warnings)) records.push(record);
    assert.deepEqual(
      records.map((r) => [r.event, r.unknownEvent]),
      [
        [undefined, "WARP_DRIVE"],
        [undefined, "WARP_DRIVE"],
      ],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /future\.log:1: event "WARP_DRIVE" is not in the vocabulary/);
  });

  test("equal times are ordered by component, then pid, then seq", async () => {
    // One instant, seen by several processes; the files hold them in an order the merge must fix.
    const a = await writeLog(join(dir, "tie-a.log"), [
      { time: T0, component: "minion", pid: 20, seq: 7 },
      { time: T0, component: "minion", pid: 20, seq: 9 },
      { time: T0 + 0.001, component: "minion", pid: 20, seq: 10 },
    ]);
    const b = await writeLog(join(dir, "tie-b.log"), [
      { time: T0, component: "minion", pid: 20, seq: 8 },
      { time: T0, component: "minion", pid: 21, seq: 1 },
    ]);
    const c = await writeLog(join(dir, "tie-c.log"), [
      { time: T0, component: "crm", pid: 99, seq: 50 },
      { time: T0 + 0.001, component: "crm", pid: 99, seq: 51 },
    ]);
    const { records, warnings } = await mergeTimeline([a, b, c]);
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      records.map((r) => `${r.component}/${r.pid}/${r.seq}`),
      ["crm/99/50", "minion/20/7", "minion/20/8", "minion/20/9", "minion/21/1", "crm/99/51", "minion/20/10"],
    );
  });

  test("merging files that are in order needs no sort and gives no warning", async () => {
    const paths = [];
    for (let f = 0; f < 5; f++) {
      const records = [];
      for (let i = 0; i < 200; i++) records.push({ time: T0 + i * 5 + f, component: `c${f}`, seq: i });
      paths.push(await writeLog(join(dir, `many-${f}.log`), records));
    }
    const { records, warnings } = await mergeTimeline(paths);
    assert.deepEqual(warnings, []);
    assert.equal(records.length, 1000);
    for (let i = 1; i < records.length; i++) {
      const prev = records[i - 1];
      const cur = records[i];
      assert.ok(prev && cur && compareRecords(prev, cur) < 0);
    }
  });

  test("a file slightly out of order is still merged into the right order, with a warning", async () => {
    const shared = await writeLog(join(dir, "shared.log"), [
      { time: T0 + 1, component: "a", seq: 1 },
      { time: T0 + 3, component: "a", seq: 2 },
      { time: T0 + 2, component: "b", seq: 1 },
      { time: T0 + 5, component: "a", seq: 3 },
    ]);
    const other = await writeLog(join(dir, "other.log"), [
      { time: T0, component: "c", seq: 1 },
      { time: T0 + 4, component: "c", seq: 2 },
    ]);
    const { records, warnings } = await mergeTimeline([shared, other]);
    assert.deepEqual(
      records.map((r) => r.time - T0),
      [0, 1, 2, 3, 4, 5],
    );
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /shared\.log:3: record out of order/);
  });

  test("a missing file and a torn line become warnings, the rest is merged", async () => {
    const good = await writeLog(join(dir, "good.log"), [{ time: T0, component: "good", seq: 1 }], '{"time":');
    const { records, warnings } = await mergeTimeline([good, join(dir, "missing.log"), good]);
    assert.equal(records.length, 1, "the same file given twice is read once");
    assert.equal(warnings.length, 2);
    assert.ok(warnings.some((w) => w.includes("missing.log: cannot read: ENOENT")));
    assert.ok(warnings.some((w) => w.includes("good.log:2: torn last line")));
  });

  describe("filters", () => {
    let paths: string[] = [];
    before(async () => {
      paths = [
        await writeLog(join(dir, "f-proxy.log"), [
          { time: T0 + 1, component: "snitch-proxy", seq: 1, event: "REQUEST_RECEIVED", requestId: "req-one-1", serviceId: "alice-blog" },
          { time: T0 + 4, component: "snitch-proxy", seq: 2, event: "RESPONSE_SENT", requestId: "req-one-1", serviceId: "alice-blog" },
          { time: T0 + 5, component: "snitch-proxy", seq: 3, event: "REQUEST_RECEIVED", requestId: "req-two-2", serviceId: "bob-shop" },
          { time: T0 + 6, component: "snitch-proxy", seq: 4, msg: "plain record", requestId: "req-two-2" },
        ]),
        await writeLog(join(dir, "f-activator.log"), [
          { time: T0 + 2, component: "docker-activator", seq: 1, event: "BACKEND_WOKEN", requestId: "req-one-1", serviceId: "alice-blog" },
          { time: T0 + 3, component: "docker-activator", seq: 2, event: "SERVICE_UP", serviceId: "alice-blog" },
          { time: T0 + 7, component: "docker-activator", seq: 3, event: "ERROR", level: "error", requestId: "req-two-2", serviceId: "bob-shop" },
        ]),
      ];
    });
    const times = (records: LogRecord[]): number[] => records.map((r) => r.time - T0);

    test("no filter keeps everything in order", async () => {
      assert.deepEqual(times((await mergeTimeline(paths)).records), [1, 2, 3, 4, 5, 6, 7]);
    });
    test("requestId keeps one request's story across components", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { requestId: "req-one-1" })).records), [1, 2, 4]);
    });
    test("serviceId keeps what happened to one service", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { serviceId: "alice-blog" })).records), [1, 2, 3, 4]);
    });
    test("since and until are inclusive bounds", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { since: T0 + 2, until: T0 + 5 })).records), [2, 3, 4, 5]);
      assert.deepEqual(times((await mergeTimeline(paths, { since: T0 + 6 })).records), [6, 7]);
      assert.deepEqual(times((await mergeTimeline(paths, { until: T0 + 1 })).records), [1]);
    });
    test("component keeps one component", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { component: "docker-activator" })).records), [2, 3, 7]);
    });
    test("events keeps those events only, never plain records", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { events: ["REQUEST_RECEIVED", "ERROR"] })).records), [1, 5, 7]);
      assert.deepEqual(times((await mergeTimeline(paths, { events: [] })).records), []);
    });
    test("criteria combine", async () => {
      assert.deepEqual(times((await mergeTimeline(paths, { requestId: "req-two-2", component: "snitch-proxy", since: T0 + 5.5 })).records), [6]);
    });
  });

  test("logFilesIn lists current and rotated logs only, and nothing for a missing folder", async () => {
    const logs = join(dir, "state", "logs");
    await mkdir(join(logs, "sub.log"), { recursive: true });
    for (const name of ["minion.log", "minion.log.1", "minion.log.12", "crm.log", "notes.txt", "x.log.gz", "x.log.old", "x.logs"]) {
      await writeFile(join(logs, name), "");
    }
    assert.deepEqual(await logFilesIn(logs), ["crm.log", "minion.log", "minion.log.1", "minion.log.12"].map((name) => join(logs, name)));
    assert.deepEqual(await logFilesIn(join(dir, "nowhere")), []);
  });

  test("loggers writing to logFileFor are found by logFilesIn and merged", async () => {
    const state = join(dir, "state2");
    const minion = createLogger({ component: "minion", file: logFileFor(state, "minion") });
    const crm = createLogger({ component: "crm", file: logFileFor(state, "crm") });
    crm.event("SPEC_APPLIED", { serviceId: "alice-blog" });
    minion.event("RECONCILE_STARTED", { serviceId: "alice-blog" });
    minion.event("RECONCILE_DONE", { serviceId: "alice-blog" });
    crm.event("REQUEST_RECEIVED", { path: "/status" });
    await Promise.all([minion.close(), crm.close()]);
    const { records, warnings } = await mergeTimeline(await logFilesIn(join(state, "logs")));
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      records.map((r) => `${r.component}:${r.event ?? ""}`),
      ["crm:SPEC_APPLIED", "minion:RECONCILE_STARTED", "minion:RECONCILE_DONE", "crm:REQUEST_RECEIVED"],
    );
  });
});
