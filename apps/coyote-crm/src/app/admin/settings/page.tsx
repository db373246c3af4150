import type { Metadata } from "next";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { keyMasks } from "../../../lib/settings.ts";
import { readWebhooks } from "@coyote/spec";
import { readServer, stateStore } from "../../../lib/state.ts";
import { AlarmsForm, HeartbeatForm, KeysForm, ShopForm } from "./SettingsForms.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Settings" };

/** The box's settings: alarm destinations, provider keys, the shop and the buddies' heartbeat. */
export default async function SettingsPage() {
  await requireAdmin();
  const store = await stateStore();
  const [server, masks] = await Promise.all([readServer(store), keyMasks(store)]);
  const webhooks = await readWebhooks(server, (name) => store.readSecret(name));
  const csrf = await csrfToken();
  return (
    <>
      <h1>Settings</h1>
      <h2>Alarm destinations</h2>
      <AlarmsForm csrf={csrf} initial={{ values: { emails: server.alarms.email.join("\n"), webhooks: webhooks.join("\n") } }} />
      <h2>Provider API keys</h2>
      <p className="muted">Vultr creates new servers from this one; Namecheap registers domains and points their name servers here. A stored key is never shown again.</p>
      <KeysForm csrf={csrf} masks={masks} />
      <h2>Shop</h2>
      <ShopForm csrf={csrf} initial={{ values: { customerDomain: server.customerDomain ?? "", ...(server.signupsOpen ? { signupsOpen: "on" } : {}) } }} />
      <h2>Buddy heartbeat</h2>
      <HeartbeatForm csrf={csrf} initial={{ values: { intervalSeconds: String(server.heartbeat.intervalSeconds), missedBeforeDown: String(server.heartbeat.missedBeforeDown) } }} />
    </>
  );
}
