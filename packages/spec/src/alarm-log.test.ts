import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AlarmLog, type AlarmLogLimits } from "./alarm-log.ts";
import type { Alarm } from "./runtime.ts";
import { StateStore } from "./store.ts";

const DAY = 86_400_000;
const LIMITS: AlarmLogLimits = { maxBytes: 4096, generations: 2, retentionMs: 30 * DAY, readCapBytes: 64 * 1024 };
let sequence = 0;

function alarm(key: string, state: Alarm["state"], at: number, message = "the thing is wrong"): Alarm {
  sequence++;
  return { schemaVersion: 1, id: `al-${String(sequence).padStart(12, "0")}`, key, state, severity: "warning", source: "test", code: "TEST_ALARM", message, at: new Date(at).toISOString() };
}

/** The alarms as the panel folds them: key → [the id that began the current raise, last state]. */
function fold(alarms: readonly Alarm[]): Map<string, { raiseId: string; state: string; message: string }> {
  const byKey = new Map<string, { raiseId: string; state: string; message: string }>();
  for (const a of alarms) {
    const before = byKey.get(a.key);
    const newRaise = a.state === "raised" && before?.state !== "raised";
    byKey.set(a.key, { raiseId: newRaise || !before ? a.id : before.raiseId, state: a.state, message: a.message });
  }
  return byKey;
}

describe("alarm log", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "alarm-log-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function fresh(name: string, now = () => Date.now()) {
    const dir = join(root, name);
    await mkdir(join(dir, "run"), { recursive: true });
    return { dir, log: new AlarmLog(join(dir, "alarms.jsonl"), join(dir, "run", "alarms.lock"), LIMITS, now) };
  }

  it("rotates by size into two generations, and keeps every alarm still raised with the raise it began with", async () => {
    const { dir, log } = await fresh("size");
    const now = Date.now();
    const open = alarm("disk/full", "raised", now, "the disk is full");
    await log.append(open);
    await log.append(alarm("disk/full", "raised", now, "the disk is still full"));
    for (let i = 0; i < 200; i++) {
      await log.append(alarm(`flap/${i % 7}`, i % 2 === 0 ? "raised" : "cleared", now));
    }
    await log.append(alarm("late/one", "raised", now));
    const files = ["alarms.jsonl", "alarms.1.jsonl", "alarms.2.jsonl", "alarms.3.jsonl"].map((f) => existsSync(join(dir, f)));
    assert.deepEqual(files, [true, true, true, false], "the current file and two generations, no more");
    for (const f of ["alarms.jsonl", "alarms.1.jsonl", "alarms.2.jsonl"]) {
      assert.ok((await stat(join(dir, f))).size <= LIMITS.maxBytes + 512, `${f} stays near its limit`);
    }
    const { alarms, warnings } = await log.read();
    assert.deepEqual(warnings, []);
    const board = fold(alarms);
    assert.deepEqual(board.get("disk/full"), { raiseId: open.id, state: "raised", message: "the disk is still full" }, "an open alarm survives rotation with the id of its raise and its latest message");
    assert.equal(board.get("late/one")?.state, "raised");
    // flap/k ends raised when its last write (the largest i with i % 7 == k) was even.
    for (let k = 0; k < 7; k++) {
      let last = k;
      while (last + 7 < 200) last += 7;
      if (last % 2 === 0) assert.equal(board.get(`flap/${k}`)?.state, "raised", `flap/${k} is still raised`);
    }
  });

  it("drops cleared alarms past the retention, never raised ones", async () => {
    let clock = Date.now();
    const { dir, log } = await fresh("age", () => clock);
    const old = alarm("old/open", "raised", clock - 40 * DAY);
    await log.append(old);
    await log.append(alarm("old/closed", "raised", clock - 40 * DAY));
    await log.append(alarm("old/closed", "cleared", clock - 39 * DAY));
    // The next append finds a cleared line past the retention and rotates.
    await log.append(alarm("new/closed", "cleared", clock));
    const current = fold((await log.read()).alarms);
    assert.equal(current.get("old/open")?.raiseId, old.id, "a raised alarm stays whatever its age");
    assert.equal(current.has("old/closed"), false, "the old cleared alarm is gone from the current file");
    assert.ok(existsSync(join(dir, "alarms.1.jsonl")));
    // A generation past the retention goes at the next rotation; raised alarms carried over do not
    // make the file rotate again.
    await utimes(join(dir, "alarms.1.jsonl"), new Date(clock - 31 * DAY), new Date(clock - 31 * DAY));
    clock += 31 * DAY;
    await log.append(alarm("another", "raised", clock));
    assert.equal(existsSync(join(dir, "alarms.2.jsonl")), false, "no rotation for old raised alarms alone");
    await log.append(alarm("another", "cleared", clock - 31 * DAY));
    await log.append(alarm("trigger", "raised", clock));
    assert.equal(existsSync(join(dir, "alarms.2.jsonl")), false, "the generation past the retention is removed");
    assert.equal(fold((await log.read()).alarms).get("old/open")?.state, "raised");
  });

  it("reads only the end of a file that grew past the read cap", async () => {
    const { dir, log } = await fresh("cap");
    const line = `${JSON.stringify(alarm("bulk", "cleared", Date.now()))}\n`;
    await writeFile(join(dir, "alarms.jsonl"), line.repeat(Math.ceil((LIMITS.readCapBytes * 4) / line.length)));
    await appendFile(join(dir, "alarms.jsonl"), `${JSON.stringify(alarm("tail/open", "raised", Date.now()))}\n`);
    const { alarms, warnings } = await log.read();
    assert.ok(alarms.length < LIMITS.readCapBytes / line.length + 1, `read ${alarms.length} lines`);
    assert.equal(fold(alarms).get("tail/open")?.state, "raised");
    assert.match(warnings.join("; "), /alarms\.jsonl is \d+ bytes: only its last 65536 bytes were read/);
    // Its next append rotates it, reading it line by line, and keeps what is still raised.
    await log.append(alarm("next", "raised", Date.now()));
    assert.ok((await stat(join(dir, "alarms.jsonl"))).size < 4096);
    assert.deepEqual([...fold((await log.read()).alarms).keys()].sort(), ["next", "tail/open"]);
  });

  it("loses no raised alarm when many appends and rotations race", async () => {
    const { log } = await fresh("race");
    const now = Date.now();
    const keys = Array.from({ length: 30 }, (_, i) => `race/${i}`);
    await Promise.all(keys.map((key) => log.append(alarm(key, "raised", now, "x".repeat(200)))));
    const board = fold((await log.read()).alarms);
    assert.deepEqual(keys.filter((key) => board.get(key)?.state !== "raised"), []);
  });

  it("is what the state store appends to and reads", async () => {
    const store = await StateStore.open(join(root, "store"), { author: { name: "Test", email: "test@example.org" } });
    await store.appendAlarm(alarm("store/one", "raised", Date.now()));
    assert.deepEqual([...fold((await store.readAlarms()).alarms).keys()], ["store/one"]);
  });
});
