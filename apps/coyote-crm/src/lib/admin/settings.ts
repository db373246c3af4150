// The admin settings that lib/settings.ts does not cover (the buddies' heartbeat), and what the
// audit log may say about a provider-keys change: only which keys changed, never a key.
import { z } from "zod";
import type { ServerSpec, StateStore } from "@coyote/spec";
import type { KeysInput } from "../settings.ts";
import { updateServer } from "../settings.ts";

/** The heartbeat between buddies: how often, and how many missed ones make a buddy down. */
export const HeartbeatInput = z.object({
  intervalSeconds: z.coerce
    .number({ error: "a whole number of seconds" })
    .int({ error: "a whole number of seconds" })
    .min(1, { error: "at least 1 second" })
    .max(3600, { error: "at most 3600 seconds (an hour)" }),
  missedBeforeDown: z.coerce
    .number({ error: "a whole number" })
    .int({ error: "a whole number" })
    .min(1, { error: "at least 1" })
    .max(100, { error: "at most 100" }),
});

/** Stores the heartbeat settings in the server spec (one commit). */
export async function saveHeartbeat(store: StateStore, actor: string, input: z.output<typeof HeartbeatInput>): Promise<ServerSpec> {
  return updateServer(store, actor, "set the buddy heartbeat", (spec) => ({ ...spec, heartbeat: { intervalSeconds: input.intervalSeconds, missedBeforeDown: input.missedBeforeDown } }));
}

/** What happened to one provider's key in a save. */
export type KeyChange = "replaced" | "removed" | "kept";

/** Which provider keys a save changes, for the audit log and the answer: never the keys themselves. */
export function keyChanges(input: z.output<typeof KeysInput>): { vultr: KeyChange; namecheap: KeyChange } {
  return {
    vultr: input.removeVultr === "on" ? "removed" : input.vultr !== "" ? "replaced" : "kept",
    namecheap: input.removeNamecheap === "on" ? "removed" : input.namecheapKey !== "" ? "replaced" : "kept",
  };
}
