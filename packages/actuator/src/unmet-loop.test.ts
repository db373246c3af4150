// A plan that leaves part of the spec unmet, through the loop the minion runs: the rest is applied
// once, the unmet part is reported as a terminal failure, and later passes apply nothing.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { createLogger } from "@coyote/log";
import { ServerSpec, ServiceStatus, StateStore } from "@coyote/spec";
import { ActuatorError, CommitJournal, Reconciler, converge, type Actuator, type ActuatorContext } from "./index.ts";
import type { PartialPlan } from "./unmet.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Makes the items a service asks for, except those named "bad", which it reports as unmet. */
function maker(world: { made: Set<string>; applies: number }, wanted: readonly string[]): Actuator<ReadonlySet<string>, string> {
  return {
    id: "actuator.test.maker",
    condition: "MakerReady",
    observe: () => Promise.resolve(new Set(world.made)),
    plan(target, made): PartialPlan<string> {
      const steps = wanted.filter((item) => item !== "bad" && !made.has(item));
      const plan = { steps, describe: steps.map((item) => `make ${item}`) };
      return wanted.includes("bad") ? { ...plan, unmet: { reason: "BadItem", message: `planning items for service ${target.id}: item bad cannot be made` } } : plan;
    },
    apply(plan) {
      world.applies++;
      for (const item of plan.steps) world.made.add(item);
      return Promise.resolve();
    },
  };
}

test("applies what it can once, reports the unmet part terminally, and plans nothing after", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-unmet-"));
  dirs.push(stateDir);
  const context: ActuatorContext = { stateDir, store: await StateStore.open(stateDir), logger: createLogger({ component: "test", level: "silent" }), signal: new AbortController().signal, server: ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.org" }) };
  const world = { made: new Set<string>(), applies: 0 };
  const actuator = maker(world, ["one", "bad", "two"]);
  const target = { id: "alpha", spec: undefined };
  const unmet = (error: unknown) => error instanceof ActuatorError && error.terminal && error.reason === "BadItem" && /item bad cannot be made/.test(error.message);

  await assert.rejects(converge(actuator, target, context), unmet, "reported after the rest was applied");
  assert.deepEqual([...world.made].sort(), ["one", "two"]);
  assert.equal(world.applies, 1);

  await assert.rejects(converge(actuator, target, context), unmet, "still reported with nothing left to do");
  assert.equal(world.applies, 1, "a converged service applies nothing");
  assert.deepEqual(actuator.plan(target, await actuator.observe(target, context), context.server).steps, []);

  // Without the bad item the service is simply converged.
  const fixed = maker(world, ["one", "two"]);
  assert.deepEqual(await converge(fixed, target, context), { changed: false, plan: { steps: [], describe: [] } });
});

test("the minion's batches report the unmet part as the actuator's condition, on the pass that applies and on the converged ones", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-unmet-"));
  dirs.push(stateDir);
  const author = { name: "test", email: "test@example.org" };
  const store = await StateStore.open(stateDir, { author });
  await store.applySpec({ schemaVersion: 1, kind: "Service", id: "alpha", domains: [{ name: "alpha.example.org" }] }, { author });
  const journal = new CommitJournal(stateDir);
  await journal.load();
  const reconciler = new Reconciler({ store, logger: createLogger({ component: "test", level: "silent" }), journal, signal: new AbortController().signal, now: () => new Date("2026-12-01T00:00:00.000Z") });
  const world = { made: new Set<string>(), applies: 0 };
  const actuator = maker(world, ["one", "bad"]);
  const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.org" });
  const condition = async () => {
    const status = await store.readJson("status/alpha.json", ServiceStatus);
    return status?.conditions.find((c) => c.type === "MakerReady");
  };

  for (let pass = 1; pass <= 2; pass++) {
    const outcomes = await reconciler.reconcileBatch(["alpha"], [actuator], server);
    assert.deepEqual(outcomes.get("alpha"), { kind: "terminal" }, `pass ${pass}: waits for the spec to change`);
    const reported = await condition();
    assert.equal(reported?.status, "False", `pass ${pass}`);
    assert.equal(reported.reason, "BadItem");
    assert.match(reported.message, /item bad cannot be made/);
    assert.equal(world.applies, 1, `pass ${pass}: applied once, on the first pass only`);
  }
  assert.deepEqual(journal.pending, [], "what the first pass applied was committed");
});
