import type { ComponentDefinition } from "@coyote/component";
import { startMinion } from "./component.ts";

export { Minion, type MinionOptions } from "./minion.ts";
export { serverOrDefaults } from "@coyote/spec";
export { WorkQueue, type Outcome, type QueueOptions } from "./queue.ts";
export { mergeConditions } from "@coyote/actuator";
export { bundledActuators } from "./bundled.ts";
export { MINION_ERRORS, MinionError, type MinionErrorCode } from "./errors.ts";

/** The minion as `coyote up` and `coyote run minion` know it. */
export const component: ComponentDefinition = {
  name: "minion",
  summary: "Reconciles the server with its specs through actuators, and raises alarms when it cannot",
  start: startMinion,
};
