import { PlanCard } from "../components/shop/PlanCard.tsx";
import { crmDb } from "../lib/instance.ts";
import { activePlans } from "../lib/plans.ts";
import { readServer, stateStore } from "../lib/state.ts";

/** The public home page: the box's pitch and the plans on offer. */
export default async function Home() {
  const server = await readServer(await stateStore());
  const plans = activePlans(crmDb());
  return (
    <main>
      <h1>{server.name}</h1>
      <p>
        Your own website, mailbox and chat account on your own domain, hosted on a small independent server instead of a cloud giant. Pick a plan, choose a domain, and your
        service is set up within a minute: HTTPS certificate, mail and XMPP included.
      </p>
      {server.customerDomain === undefined ? null : (
        <p className="muted">
          No domain yet? Take a name under {server.customerDomain}, like yourname.{server.customerDomain}.
        </p>
      )}
      <section id="plans" aria-label="Plans">
        {server.signupsOpen ? null : <p className="notice warn">Signups are closed right now.</p>}
        {plans.length === 0 ? (
          <p className="muted">No plans are on offer yet.</p>
        ) : (
          <div className="plans">
            {plans.map((plan) => (
              <PlanCard key={plan.id} plan={plan} signupsOpen={server.signupsOpen} />
            ))}
          </div>
        )}
      </section>
    </main>
  );
}
