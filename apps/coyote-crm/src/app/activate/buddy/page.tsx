import type { Metadata } from "next";
import { csrfToken } from "../../../lib/auth.ts";
import { readServer, stateStore } from "../../../lib/state.ts";
import { BuddyForm } from "../forms.tsx";
import { openStep } from "../guard.ts";
import { Steps } from "../Steps.tsx";

export const metadata: Metadata = { title: "Activate: buddy server" };

export default async function BuddyStep() {
  await openStep("buddy");
  const server = await readServer(await stateStore());
  return (
    <main className="medium">
      <h1>Buddy server</h1>
      <Steps current="buddy" />
      <p>
        A buddy is another Coyote box. The two watch each other; when one fails, the other can take over its services. Without a buddy, nobody notices when this
        box goes down.
      </p>
      {server.buddies.length > 0 ? (
        <p className="notice ok">
          Added: {server.buddies.map((b) => b.name).join(", ")}. <a href="/activate/finish">Continue</a>
        </p>
      ) : null}
      <BuddyForm csrf={await csrfToken()} />
    </main>
  );
}
