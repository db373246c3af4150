import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { createLogger } from "@coyote/log";
import { StateStore, type ServerSpec } from "@coyote/spec";
import { CommitJournal, ReconcileLoop, commitActuator, converge, type Actuator, type ActuatorContext } from "./index.ts";

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function contextIn(): Promise<ActuatorContext> {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-reconcile-"));
  dirs.push(stateDir);
  const store = await StateStore.open(stateDir);
  return { stateDir, store, logger: createLogger({ component: "test", level: "silent" }), signal: new AbortController().signal, server: { kind: "Server" } as ServerSpec };
}

/** An actuator that claims one shared name for whichever service asks first. */
function claimer(world: { owner: string | undefined; applies: string[] }): Actuator<string | undefined, string> {
  return {
    id: "actuator.test.claim",
    condition: "ClaimReady",
    async observe() {
      // A real observe waits on the disk: the other service's step runs meanwhile.
      await tick();
      return world.owner;
    },
    plan: (target, owner) => (owner === undefined ? { steps: [target.id], describe: [`claim for ${target.id}`] } : { steps: [], describe: [] }),
    async apply(plan, target) {
      await tick();
      world.owner = target.id;
      world.applies.push(...plan.steps);
    },
  };
}

describe("the reconcile loop", () => {
  test("plans again under the lock: of two services claiming one name at once, only the first applies", async () => {
    const context = await contextIn();
    const world = { owner: undefined as string | undefined, applies: [] as string[] };
    const actuator = claimer(world);
    const journal = new CommitJournal(context.stateDir);
    await journal.load();
    const loop = new ReconcileLoop({ journal });
    const [a, b] = await Promise.all([loop.step(actuator, { id: "a", spec: undefined }, context), loop.step(actuator, { id: "b", spec: undefined }, context)]);
    assert.deepEqual(world.applies, ["a"], "the second service saw the first one's claim");
    assert.equal(a.changed, true);
    assert.equal(b.changed, false);
  });

  test("records the owed commit before the apply, and the commit pays it", async () => {
    const context = await contextIn();
    const journalFile = join(context.stateDir, "minion", "pending-commits.json");
    const owedDuringApply: unknown[] = [];
    let commitFails = true;
    const actuator: Actuator<boolean, string> = {
      id: "actuator.test.owe",
      condition: "OweReady",
      observe: () => Promise.resolve(false),
      plan: (_t, done) => (done ? { steps: [], describe: [] } : { steps: ["write"], describe: ["write"] }),
      apply: () => {
        owedDuringApply.push(JSON.parse(readFileSync(journalFile, "utf8")));
        return Promise.resolve();
      },
      commit: () => (commitFails ? Promise.reject(new Error("reload refused")) : Promise.resolve()),
    };
    const loop = new ReconcileLoop({ journal: new CommitJournal(context.stateDir) });
    assert.equal((await converge(actuator, { id: "svc", spec: undefined }, context, loop)).changed, true);
    assert.deepEqual(owedDuringApply, [["actuator.test.owe"]], "the journal on disk names the actuator while it applies");

    await assert.rejects(loop.commit(actuator, context), /reload refused/);
    assert.deepEqual(JSON.parse(readFileSync(journalFile, "utf8")), ["actuator.test.owe"], "a failed commit stays owed");
    commitFails = false;
    await loop.commit(actuator, context);
    assert.deepEqual(JSON.parse(readFileSync(journalFile, "utf8")), [], "a commit that went through is paid");
  });

  test("converge and commitActuator without a loop keep the journal where the minion keeps it", async () => {
    const context = await contextIn();
    const actuator = claimer({ owner: undefined, applies: [] });
    assert.equal((await converge(actuator, { id: "svc", spec: undefined }, context)).changed, true);
    assert.deepEqual(await new CommitJournal(context.stateDir).load(), ["actuator.test.claim"]);
    await commitActuator(actuator, context);
    assert.deepEqual(await new CommitJournal(context.stateDir).load(), [], "the commit crossed it off");
  });
});
