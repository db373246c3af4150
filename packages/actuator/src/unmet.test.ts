import assert from "node:assert/strict";
import { it } from "node:test";
import { ActuatorError, type Plan } from "./index.ts";
import { unmetError, unmetOf } from "./unmet.ts";

it("reads a plan's unmet part, and ignores one of the wrong shape (plugins are not type-checked)", () => {
  const plan: Plan = { steps: [], describe: [] };
  assert.equal(unmetOf(plan), undefined);
  assert.deepEqual(unmetOf({ ...plan, unmet: { reason: "DomainTaken", message: "planning x: domain a.test is taken" } } as Plan), { reason: "DomainTaken", message: "planning x: domain a.test is taken" });
  for (const odd of [null, "DomainTaken", 42, { reason: "DomainTaken" }, { reason: 1, message: "m" }]) {
    assert.equal(unmetOf({ ...plan, unmet: odd } as Plan), undefined, JSON.stringify(odd));
  }
  const error = unmetError({ reason: "DomainTaken", message: "planning x: domain a.test is taken" });
  assert.ok(error instanceof ActuatorError);
  assert.equal(error.terminal, true);
  assert.equal(error.reason, "DomainTaken");
});
