import { component as crm } from "@coyote/coyote-crm";
import { component as listener } from "@coyote/coyote-listener";
import { component as activator } from "@coyote/docker-activator";
import { component as minion } from "@coyote/minion";
import { component as proxy } from "@coyote/snitch-proxy";
import { COMPONENT_NAMES, type ComponentDefinition } from "@coyote/component";

/** Every component, in the start order of {@link COMPONENT_NAMES}. */
export const COMPONENTS: readonly ComponentDefinition[] = [minion, activator, proxy, listener, crm];

// The list above and the names in @coyote/component must agree; a mistake here would make
// `coyote up` skip a component silently.
if (COMPONENTS.map((c) => c.name).join() !== COMPONENT_NAMES.join()) {
  throw new Error(`cli: the component list (${COMPONENTS.map((c) => c.name).join(", ")}) does not match COMPONENT_NAMES`);
}

/** Finds a component by name. */
export function findComponent(name: string): ComponentDefinition | undefined {
  return COMPONENTS.find((c) => c.name === name);
}
