import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ActuatorError } from "./index.ts";

describe("ActuatorError", () => {
  test("its code says whether the minion retries, its reason why it failed", () => {
    const terminal = new ActuatorError("InvalidZone", "zone example.org: no such record type", { terminal: true });
    assert.ok(terminal instanceof ActuatorError);
    assert.equal(terminal.code, "ACTUATOR_ERR_TERMINAL");
    assert.equal(terminal.name, "ActuatorError");
    assert.equal(terminal.message, "zone example.org: no such record type");
    const transient = new ActuatorError("ReadFailed", "reading zone example.org: EIO");
    assert.equal(transient.code, "ACTUATOR_ERR_FAILED");
    assert.equal(transient.terminal, false);
    assert.equal(Object.hasOwn(transient, "cause"), false);
  });
});
