import type { ComponentDefinition } from "@coyote/component";

/**
 * The coyote-listener component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is not built yet, and until it is `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "coyote-listener",
  summary: "The server-to-server endpoint: buddy heartbeats and coyote requests",
  plannedIn: "the buddy protocol",
};
