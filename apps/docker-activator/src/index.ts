import type { ComponentDefinition } from "@coyote/component";

export { ActivatorClient, ActivatorError, type WakeErrorCode } from "./client.ts";

/**
 * The docker-activator component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is built in issue #5, and until then `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "docker-activator",
  summary: "Starts containers on first request, stops idle ones, keeps within the memory budget",
  plannedIn: "issue #5",
};
