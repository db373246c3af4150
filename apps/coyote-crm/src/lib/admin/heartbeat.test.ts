import assert from "node:assert/strict";
import { test } from "node:test";
import type { ComponentStats } from "@coyote/spec";
import { heartbeatCounter } from "@coyote/spec";
import { heartbeatBadge, heartbeatLabel, heartbeatState, heartbeatText } from "./heartbeat.ts";

const FP = `sha256:${"ab".repeat(32)}`;
const settings = { intervalSeconds: 30, missedBeforeDown: 5 };
const now = 1_800_000_000_000;

function listener(counters: Record<string, number>): ComponentStats {
  return {
    schemaVersion: 1,
    component: "coyote-listener",
    pid: 42,
    startedAt: "2026-11-23T00:00:00.000Z",
    writtenAt: "2026-11-23T01:00:00.000Z",
    process: { rssBytes: 1, heapUsedBytes: 1, uptimeSeconds: 1 },
    counters,
  };
}

test("without the listener's stats file there is no data", () => {
  const state = heartbeatState(FP, undefined, settings, now);
  assert.equal(state.kind, "no-data");
  assert.equal(heartbeatText(state), "no heartbeat data: coyote-listener is not running");
  assert.equal(heartbeatBadge(state), "warn");
  assert.equal(heartbeatLabel(state), "unknown");
});

test("a buddy the listener never heard from is 'never'", () => {
  assert.equal(heartbeatState(FP, listener({ [heartbeatCounter(`sha256:${"cd".repeat(32)}`)]: now }), settings, now).kind, "never");
});

test("a recent heartbeat is up and says how long ago", () => {
  const state = heartbeatState(FP, listener({ [`buddy.${FP}.lastHeartbeatAt`]: now - 12_500 }), settings, now);
  assert.deepEqual(state, { kind: "up", lastAt: now - 12_500, agoSeconds: 12 });
  assert.equal(heartbeatText(state), "last heartbeat 12 s ago");
  assert.equal(heartbeatBadge(state), "ok");
  assert.equal(heartbeatLabel(state), "up");
});

test("silence longer than interval × missedBeforeDown is down", () => {
  // 30 s × 5 = 150 s: exactly the limit is still up, one millisecond more is down.
  assert.equal(heartbeatState(FP, listener({ [heartbeatCounter(FP)]: now - 150_000 }), settings, now).kind, "up");
  const down = heartbeatState(FP, listener({ [heartbeatCounter(FP)]: now - 150_001 }), settings, now);
  assert.equal(down.kind, "down");
  assert.equal(heartbeatText(down), "last heartbeat 150 s ago");
  assert.equal(heartbeatLabel(down), "down");
  assert.equal(heartbeatBadge(down), "bad");
  assert.equal(heartbeatState(FP, listener({ [heartbeatCounter(FP)]: now - 20_000 }), { intervalSeconds: 2, missedBeforeDown: 5 }, now).kind, "down");
});

test("a heartbeat from a clock slightly ahead reads as just now", () => {
  assert.deepEqual(heartbeatState(FP, listener({ [heartbeatCounter(FP)]: now + 3000 }), settings, now), { kind: "up", lastAt: now + 3000, agoSeconds: 0 });
});
