import type { ComponentDefinition } from "@coyote/component";

/**
 * The coyote-listener component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is built in a later issue (not filed yet), and until then `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "coyote-listener",
  summary: "The server-to-server endpoint: buddy heartbeats and coyote requests",
  plannedIn: "a later issue (not filed yet)",
};
