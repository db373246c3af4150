import type { ComponentDefinition } from "@coyote/component";

/**
 * The snitch-proxy component as `coyote up` and `coyote run` know it. It has no `start()` yet: the
 * daemon is built in issue #4, and until then `coyote up` reports it as not there rather than
 * pretending to run it.
 */
export const component: ComponentDefinition = {
  name: "snitch-proxy",
  summary: "The TLS front door: SNI certificates from ACME, routing, wake-on-request, traffic stats",
  plannedIn: "issue #4",
};
