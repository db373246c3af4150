import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { Actuator } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import { Minion, MinionError } from "./index.ts";

test("two bundled actuators with one id stop the minion's start with MINION_ERR_ACTUATOR_ID_TAKEN", async () => {
  const stateDir = mkdtempSync(join(tmpdir(), "coyote-minion-errors-"));
  const twin: Actuator = {
    id: "actuator.twin",
    condition: "Twin",
    observe: () => Promise.resolve(undefined),
    plan: () => ({ steps: [], describe: [] }),
    apply: () => Promise.resolve(),
  };
  const minion = new Minion({ stateDir, logger: createLogger({ component: "minion", destination: new PassThrough() }), actuators: () => [twin, { ...twin }] });
  try {
    await assert.rejects(minion.start(), (error: unknown) => error instanceof MinionError && error.code === "MINION_ERR_ACTUATOR_ID_TAKEN" && /two bundled actuators have the id actuator\.twin/.test(error.message));
  } finally {
    await minion.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
