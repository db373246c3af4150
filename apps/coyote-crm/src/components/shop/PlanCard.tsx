import type { Plan } from "../../lib/plans.ts";
import { priceText } from "../../lib/plans.ts";

/** What a plan includes, in the shop's words. */
export function planFeatures(plan: Pick<Plan, "web" | "mail" | "xmpp" | "maxMailboxes" | "maxAliases">): string[] {
  const out: string[] = [];
  if (plan.web) out.push("Website with HTTPS");
  if (plan.mail) out.push(plan.maxMailboxes === 1 ? "Mailbox" : `Up to ${plan.maxMailboxes} mailboxes`);
  if (plan.mail && plan.maxAliases > 0) out.push(`Up to ${plan.maxAliases} mail aliases`);
  if (plan.xmpp) out.push("XMPP account");
  return out;
}

/**
 * One plan of the shop: its name, price, what it includes, and (while signups are open) the link
 * to sign up for it.
 */
export function PlanCard({ plan, signupsOpen }: { plan: Plan; signupsOpen: boolean }) {
  return (
    <article className="card plan">
      <h2>{plan.name}</h2>
      <p className="price">{priceText(plan.priceCents)}</p>
      {plan.description === "" ? null : <p>{plan.description}</p>}
      <ul aria-label={`${plan.name} includes`}>
        {planFeatures(plan).map((feature) => (
          <li key={feature}>{feature}</li>
        ))}
      </ul>
      {signupsOpen ? <a href={`/signup?plan=${encodeURIComponent(plan.id)}`}>{`Choose ${plan.name}`}</a> : null}
    </article>
  );
}
