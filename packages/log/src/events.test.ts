import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { EventName } from "./index.ts";
import { EVENTS, EVENT_DESCRIPTIONS, assertEventName, createLogger, isEventName } from "./index.ts";

const REQUIRED: readonly EventName[] = [
  "SERVICE_UP",
  "SERVICE_DOWN",
  "REQUEST_RECEIVED",
  "REQUEST_SENT",
  "RESPONSE_SENT",
  "RESPONSE_RECEIVED",
  "RESULT_PRODUCED",
  "RECONCILE_STARTED",
  "RECONCILE_DONE",
  "RECONCILE_FAILED",
  "SPEC_APPLIED",
  "SPEC_ROLLED_BACK",
  "ALARM_RAISED",
  "ALARM_CLEARED",
  "CONFIG_RELOADED",
  "COMPONENT_STARTED",
  "COMPONENT_EXITED",
  "ERROR",
];

function collector(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString("utf8").split("\n").filter((line) => line !== ""));
      callback();
    },
  });
  return { stream, lines };
}

describe("event vocabulary", () => {
  test("contains every event the design names, once each", () => {
    for (const name of REQUIRED) assert.ok(EVENTS.includes(name), `${name} is missing`);
    assert.equal(new Set(EVENTS).size, EVENTS.length, "an event is listed twice");
  });

  test("describes every event in one full sentence, and nothing else", () => {
    assert.deepEqual(Object.keys(EVENT_DESCRIPTIONS).sort(), [...EVENTS].sort());
    for (const name of EVENTS) {
      const description = EVENT_DESCRIPTIONS[name];
      assert.match(description, /^[A-Z].*\.$/, `${name}: "${description}" is not a sentence`);
      assert.ok(!description.includes("\n"), `${name}: the description spans lines`);
    }
  });

  test("names are upper snake case, fit for grep and a fixed-width column", () => {
    for (const name of EVENTS) assert.match(name, /^[A-Z]+(_[A-Z]+)*$/);
  });

  test("isEventName and assertEventName accept names of the vocabulary only", () => {
    assert.equal(isEventName("RECONCILE_DONE"), true);
    assert.equal(isEventName("reconcile_done"), false);
    assert.equal(isEventName(42), false);
    assert.doesNotThrow(() => {
      assertEventName("SERVICE_UP");
    });
    assert.throws(() => {
      assertEventName("FOO");
    }, /^Error: unknown event "FOO": use one of SERVICE_UP, SERVICE_DOWN, /);
  });

  test("event() rejects a name outside the vocabulary, at compile time and at run time", () => {
    const { stream, lines } = collector();
    const log = createLogger({ component: "test", destination: stream });
    assert.throws(() => {
      // @ts-expect-error "FOO" is not an EventName, which is the point of the vocabulary.
      log.event("FOO", { a: 1 });
    }, /unknown event "FOO": use one of .*RECONCILE_DONE/);
    const fromOutside = JSON.parse('"SERVICE_UP "') as EventName;
    assert.throws(() => {
      log.event(fromOutside);
    }, /unknown event "SERVICE_UP "/);
    assert.deepEqual(lines, [], "a rejected event must not be written");
  });
});
