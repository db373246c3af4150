import type { Metadata } from "next";
import { csrfToken } from "../../../lib/auth.ts";
import { keyMasks } from "../../../lib/settings.ts";
import { stateStore } from "../../../lib/state.ts";
import { KeysForm } from "../forms.tsx";
import { openStep } from "../guard.ts";
import { Steps } from "../Steps.tsx";

export const metadata: Metadata = { title: "Activate: API keys" };

export default async function KeysStep() {
  await openStep("keys");
  return (
    <main className="medium">
      <h1>Provider API keys</h1>
      <Steps current="keys" />
      <p>With a Vultr key the box can start new servers; with a Namecheap key it can register customers&apos; domains. Both are optional and can be added later under Settings.</p>
      <KeysForm csrf={await csrfToken()} masks={await keyMasks(await stateStore())} />
    </main>
  );
}
