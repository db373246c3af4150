import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { ServiceProgress } from "../../../../components/shop/ServiceProgress.tsx";
import { csrfToken, requireCustomer } from "../../../../lib/auth.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { getPlan } from "../../../../lib/plans.ts";
import { mailAccountsOf } from "../../../../lib/shop/mail-accounts.ts";
import { ownershipOf } from "../../../../lib/shop/ownership.ts";
import { credentialsOf, ownedService, serviceLive } from "../../../../lib/shop/services.ts";
import { readServer, stateStore } from "../../../../lib/state.ts";
import { ConnectionCards } from "../../../../components/shop/ConnectionSettings.tsx";
import { connectionSettings } from "../../../../lib/shop/connection-settings.ts";
import { MailAccounts } from "./MailAccounts.tsx";

type Props = { params: Promise<{ id: string }> };

/** The tab's title is the service's domain (only for its owner; anyone else learns nothing). */
export async function generateMetadata({ params }: Props): Promise<Metadata> {
  const user = await requireCustomer();
  const row = ownedService(crmDb(), user.id, (await params).id);
  return { title: row?.domain ?? "Service" };
}

/**
 * One of the customer's services: its live setup progress and usage, and how to use each part.
 * Another customer's service, or an unknown id, is "not found", so ids cannot be probed.
 */
export default async function ServicePage({ params }: Props) {
  const user = await requireCustomer();
  const { id } = await params;
  const db = crmDb();
  const row = ownedService(db, user.id, id);
  if (row === undefined) notFound();
  const store = await stateStore();
  const [live, server, spec] = await Promise.all([serviceLive(db, store, row), readServer(store), store.getSpec(row.serviceId).catch(() => undefined)]);
  const hasWebsite = spec?.kind === "Service" && spec.web !== undefined;
  const { websiteUrl, mail, xmpp } = credentialsOf(row, hasWebsite, server);
  const ownership = ownershipOf(spec, server, live.conditions);
  const mailAccounts = mailAccountsOf(spec?.kind === "Service" ? spec : undefined, row, getPlan(db, row.planId));
  return (
    <main className="medium">
      <p className="muted">
        <a href="/account">My services</a> / {row.domain}
      </p>
      <h1>{row.domain}</h1>
      {/* Keyed by service, so that moving to another service's page starts from its own data. */}
      <ServiceProgress key={live.id} initial={live} />
      {ownership.length === 0 ? null : (
        <section aria-labelledby="ownership-heading">
          <h2 id="ownership-heading">Your domain</h2>
          {ownership.map((o) => (
            <div className="card" key={o.domain}>
              <h3>{o.domain}</h3>
              {o.state === "seen" ? (
                <p>Ownership confirmed: the box serves {o.domain}.</p>
              ) : (
                <>
                  <p>The box serves {o.domain} (website, mail, certificates) as soon as it sees that the domain is yours. It looks again every few minutes.</p>
                  {o.txt === undefined ? null : (
                    <>
                      <p>Either add this TXT record at your current DNS provider:</p>
                      <dl>
                        <dt>Name</dt>
                        <dd><code>{o.txt.name}</code></dd>
                        <dt>Type</dt>
                        <dd>TXT</dd>
                        <dt>Value</dt>
                        <dd><code>{o.txt.value}</code></dd>
                      </dl>
                    </>
                  )}
                  <p>
                    {o.txt === undefined ? "Point" : "or point"} the domain's name servers at your registrar to <code>{o.nameServer}</code>. Add the TXT record first if you will move the name servers later: the box answers for the domain only once it is confirmed.
                  </p>
                  {o.lastLook === undefined ? null : <p className="muted">Last look: {o.lastLook}</p>}
                </>
              )}
            </div>
          ))}
        </section>
      )}
      <section aria-labelledby="access-heading">
        <h2 id="access-heading">How to use it</h2>
        {websiteUrl === undefined ? null : (
          <div className="card">
            <h3>Website</h3>
            <p>
              <a href={websiteUrl}>{websiteUrl}</a>
            </p>
            <p className="muted">A starter page is there until you publish your own.</p>
          </div>
        )}
        <ConnectionCards settings={connectionSettings(server)} mailAddress={mail?.address} xmppAddress={xmpp?.address} />
      </section>
      {mailAccounts === undefined ? null : <MailAccounts csrf={await csrfToken()} service={row.serviceId} view={mailAccounts} />}
    </main>
  );
}
