import type { ComponentDefinition } from "@coyote/component";

/**
 * The coyote-crm component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is built in issue #6, and until then `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "coyote-crm",
  summary: "The web panel: activation wizard, admin dashboard and webshop",
  plannedIn: "issue #6",
};
