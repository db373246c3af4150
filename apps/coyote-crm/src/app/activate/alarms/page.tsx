import type { Metadata } from "next";
import { csrfToken } from "../../../lib/auth.ts";
import { readWebhooks } from "@coyote/spec";
import { readServer, stateStore } from "../../../lib/state.ts";
import { AlarmsForm } from "../forms.tsx";
import { openStep } from "../guard.ts";
import { Steps } from "../Steps.tsx";

export const metadata: Metadata = { title: "Activate: alarms" };

export default async function AlarmsStep() {
  const admin = await openStep("alarms");
  const store = await stateStore();
  const server = await readServer(store);
  const webhooks = await readWebhooks(server, (name) => store.readSecret(name));
  const emails = server.alarms.email.length > 0 ? server.alarms.email : [admin.email];
  return (
    <main className="medium">
      <h1>Alarms</h1>
      <Steps current="alarms" />
      <p>When this box cannot do what it was asked (a certificate that fails, a service that does not come up, a buddy that went quiet), it raises an alarm. Say who hears of it.</p>
      <AlarmsForm csrf={await csrfToken()} emails={emails.join("\n")} webhooks={webhooks.join("\n")} />
    </main>
  );
}
