import type { ComponentDefinition } from "@coyote/component";

/**
 * The minion component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is built in issue #3, and until then `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "minion",
  summary: "Reconciles the server with its specs through actuators, and raises alarms when it cannot",
  plannedIn: "issue #3",
};
