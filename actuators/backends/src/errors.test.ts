import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseFragment } from "./actuator.ts";
import { BackendsError } from "./errors.ts";

describe("the backends actuator's coded errors", () => {
  it("a fragment without its one unit is BACKENDS_ERR_FRAGMENT_INVALID", () => {
    const text = JSON.stringify({ schemaVersion: 1, generatedAt: new Date().toISOString(), units: [] });
    assert.throws(
      () => parseFragment(text, "blog.json"),
      (error: unknown) => {
        assert.ok(error instanceof BackendsError, "a BackendsError");
        assert.equal(error.code, "BACKENDS_ERR_FRAGMENT_INVALID");
        assert.match(error.message, /blog\.json: a fragment holds exactly one unit/);
        return true;
      },
    );
  });
});
