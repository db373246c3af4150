import type { Metadata } from "next";
import { buddySkipped } from "../../../lib/activation.ts";
import { csrfToken } from "../../../lib/auth.ts";
import { crmDb } from "../../../lib/instance.ts";
import { readServer, stateStore } from "../../../lib/state.ts";
import { FinishForm } from "../forms.tsx";
import { openStep } from "../guard.ts";
import { Steps } from "../Steps.tsx";

export const metadata: Metadata = { title: "Activate: open the shop" };

export default async function FinishStep() {
  await openStep("finish");
  const server = await readServer(await stateStore());
  return (
    <main className="medium">
      <h1>Open the shop</h1>
      <Steps current="finish" />
      {server.buddies.length === 0 || buddySkipped(crmDb()) ? (
        <p className="notice warn" role="alert">
          No buddy server watches this box yet: if it fails, nobody takes over its services. You can add one later under Buddies.
        </p>
      ) : null}
      <p>Last step: customers sign up in the webshop and get their site, mailbox and XMPP account at once. A plan &quot;Starter&quot; is created for you to edit.</p>
      <FinishForm csrf={await csrfToken()} customerDomain={server.customerDomain ?? ""} />
    </main>
  );
}
