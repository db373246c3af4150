import type { Metadata } from "next";
import { csrfToken } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import { activePlans, priceText } from "../../lib/plans.ts";
import { readServer, stateStore } from "../../lib/state.ts";
import { SignupForm } from "./SignupForm.tsx";

/** The tab's title. */
export const metadata: Metadata = { title: "Sign up" };

/** The hint under the domain field: the customer's own domain, or a name under the box's. */
function domainHint(customerDomain: string | undefined): string {
  const own = "your own domain, like example.org";
  return customerDomain === undefined ? own : `${own}, or a name under ${customerDomain}, like yourname.${customerDomain}`;
}

/** The signup page: one form for the account, the domain and the plan (`?plan=` preselects one). */
export default async function SignupPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const params = await searchParams;
  const server = await readServer(await stateStore());
  const plans = activePlans(crmDb());
  const wanted = typeof params.plan === "string" ? params.plan : undefined;
  const selected = plans.find((p) => p.id === wanted)?.id ?? plans[0]?.id;
  return (
    <main className="narrow">
      <h1>Sign up</h1>
      {!server.signupsOpen ? (
        <p className="notice warn">Signups are closed right now.</p>
      ) : plans.length === 0 ? (
        <p className="notice warn">No plans are on offer yet.</p>
      ) : (
        <SignupForm csrf={await csrfToken()} plans={plans.map((p) => ({ value: p.id, label: `${p.name} (${priceText(p.priceCents)})` }))} selectedPlan={selected} domainHint={domainHint(server.customerDomain)} />
      )}
      <p className="muted">
        Already have an account? <a href="/login">Sign in</a>.
      </p>
    </main>
  );
}
