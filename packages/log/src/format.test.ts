import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { LogRecord } from "./index.ts";
import { formatTime, formatTimeline } from "./index.ts";

// 2026-11-22T20:15:38.123456Z in epoch milliseconds with its microsecond fraction.
const T = Date.parse("2026-11-22T20:15:38.123Z") + 0.456;

function record(fields: Partial<LogRecord>): LogRecord {
  return { time: T, level: "info", component: "minion", pid: 4242, seq: 1, ...fields };
}

describe("formatTimeline", () => {
  test("formats the time as ISO 8601 UTC with microseconds", () => {
    assert.equal(formatTime(T), "2026-11-22T20:15:38.123456Z");
    assert.equal(formatTime(Date.parse("2026-01-01T00:00:00Z")), "2026-01-01T00:00:00.000000Z");
    // A fraction that rounds up to the next millisecond carries over instead of printing 1000.
    assert.equal(formatTime(Date.parse("2026-01-01T00:00:00.999Z") + 0.9999), "2026-01-01T00:00:01.000000Z");
  });

  test("prints the columns: time, component, event, svc, req, message, other fields", () => {
    const text = formatTimeline([
      record({ event: "RECONCILE_DONE", serviceId: "alice-blog", requestId: "abc123", msg: "converged in 12 ms", ms: 12, generation: 3 }),
    ]);
    assert.equal(text, "2026-11-22T20:15:38.123456Z  minion          RECONCILE_DONE    svc=alice-blog req=abc123  converged in 12 ms  ms=12 generation=3");
  });

  test("one line per record, in the given order, with aligned columns", () => {
    const records = [
      record({ seq: 1, component: "crm", event: "SPEC_APPLIED", serviceId: "alice-blog", msg: "plan changed" }),
      record({ seq: 2, time: T + 0.5, event: "RECONCILE_STARTED", serviceId: "alice-blog" }),
      record({ seq: 3, time: T + 1, component: "docker-activator", level: "warn", msg: "memory budget exceeded", usedMb: 900 }),
      record({ seq: 4, time: T + 2, component: "snitch-proxy", event: "RESPONSE_SENT", requestId: "r-12345678", status: 200, msg: "" }),
    ];
    const lines = formatTimeline(records).split("\n");
    assert.equal(lines.length, 4);
    assert.deepEqual(lines, [
      "2026-11-22T20:15:38.123456Z  crm              SPEC_APPLIED      svc=alice-blog  plan changed",
      "2026-11-22T20:15:38.123956Z  minion           RECONCILE_STARTED svc=alice-blog",
      "2026-11-22T20:15:38.124456Z  docker-activator warn              memory budget exceeded  usedMb=900",
      "2026-11-22T20:15:38.125456Z  snitch-proxy     RESPONSE_SENT     req=r-12345678  status=200",
    ]);
    assert.equal(formatTimeline([]), "");
  });

  test("values are compact: quoted when needed, objects as JSON, errors as type and message", () => {
    const text = formatTimeline([
      record({
        event: "ERROR",
        level: "error",
        msg: "reconcile failed",
        path: "/a b",
        plan: { add: 1 },
        ok: true,
        err: { type: "TypeError", message: "bad spec", stack: "TypeError: bad spec\n    at x", cause: { type: "Error", message: "root" } },
      }),
    ]);
    assert.equal(
      text,
      '2026-11-22T20:15:38.123456Z  minion          ERROR             reconcile failed  path="/a b" plan={"add":1} ok=true err="TypeError: bad spec; cause: Error: root"',
    );
  });

  test("control characters from the outside cannot break a line or reach the terminal", () => {
    const text = formatTimeline([
      record({ msg: "line one\nline two \u001b[2J", host: "evil\u001b]0;pwned\u0007", note: "c1\u009b31m" }),
    ]);
    assert.equal(text.split("\n").length, 1);
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(text), JSON.stringify(text));
    assert.match(text, /line one\\nline two \\x1b\[2J/);
  });

  test("color adds ANSI codes only when asked", () => {
    const records = [record({ event: "SERVICE_UP", serviceId: "a" }), record({ level: "error", msg: "boom" })];
    const plain = formatTimeline(records);
    const colored = formatTimeline(records, { color: true });
    assert.ok(!plain.includes("\u001b["));
    assert.ok(colored.includes("\u001b[31m"), "errors are red");
    // eslint-disable-next-line no-control-regex
    assert.equal(colored.replace(/\u001b\[\d+m/g, ""), plain);
  });
});
