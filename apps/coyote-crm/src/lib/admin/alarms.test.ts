import assert from "node:assert/strict";
import { test } from "node:test";
import type { Alarm } from "@coyote/spec";
import { foldAlarms, unacknowledged } from "./alarms.ts";

let n = 0;
function line(key: string, state: "raised" | "cleared", at: string, message = "something broke"): Alarm {
  n++;
  return { schemaVersion: 1, id: `alarm-${String(n).padStart(4, "0")}`, key, state, severity: "critical", source: "minion", code: "CONVERGE_FAILED", message, at, serviceId: "blog" };
}

test("a raised alarm keeps the id and time of the line that began the raise", () => {
  const first = line("minion/converge/blog", "raised", "2026-11-23T01:00:00.000Z");
  const again = line("minion/converge/blog", "raised", "2026-11-23T01:05:00.000Z", "still broken");
  const board = foldAlarms([first, again], []);
  assert.equal(board.raised.length, 1);
  assert.equal(board.raised[0]?.raiseId, first.id);
  assert.equal(board.raised[0].raisedAt, first.at);
  assert.equal(board.raised[0].message, "still broken");
  assert.equal(board.cleared.length, 0);
});

test("an acknowledgement holds for its raise only", () => {
  const first = line("k", "raised", "2026-11-23T01:00:00.000Z");
  const ack = { alarmId: first.id, by: "ada@example.org", at: "2026-11-23T01:01:00.000Z" };
  const acked = foldAlarms([first, line("k", "raised", "2026-11-23T01:02:00.000Z")], [ack]);
  assert.equal(acked.raised[0]?.ack?.by, "ada@example.org");
  assert.equal(unacknowledged(acked).length, 0);

  const cleared = line("k", "cleared", "2026-11-23T01:03:00.000Z");
  const second = line("k", "raised", "2026-11-23T01:04:00.000Z");
  const reraised = foldAlarms([first, cleared, second], [ack]);
  assert.equal(reraised.raised[0]?.raiseId, second.id);
  assert.equal(reraised.raised[0].ack, undefined);
  assert.equal(unacknowledged(reraised).length, 1);
});

test("cleared alarms are listed apart, newest first, up to the limit", () => {
  const lines: Alarm[] = [];
  for (let i = 0; i < 5; i++) {
    lines.push(line(`k${i}`, "raised", `2026-11-23T01:0${i}:00.000Z`));
    lines.push(line(`k${i}`, "cleared", `2026-11-23T02:0${i}:00.000Z`));
  }
  lines.push(line("open", "raised", "2026-11-23T00:00:00.000Z"));
  lines.push(line("newer", "raised", "2026-11-23T03:00:00.000Z"));
  const board = foldAlarms(lines, [], 3);
  assert.deepEqual(
    board.raised.map((a) => a.key),
    ["newer", "open"],
  );
  assert.deepEqual(
    board.cleared.map((a) => a.key),
    ["k4", "k3", "k2"],
  );
  assert.equal(board.cleared[0]?.raisedAt, "2026-11-23T01:04:00.000Z");
});
