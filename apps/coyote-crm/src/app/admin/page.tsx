import type { Metadata } from "next";
import type { ReactNode } from "react";
import { plural } from "../../lib/admin/format.ts";
import { loadOverview } from "../../lib/admin/load.ts";
import { requireAdmin } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import { stateStore } from "../../lib/state.ts";
import { NoBuddyWarning } from "../../components/admin/NoBuddyWarning.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Overview" };

/** One part of the box on the overview: its title links to the part's page. */
function Card({ id, href, title, children }: { id: string; href: string; title: string; children: ReactNode }) {
  return (
    <section className="card" aria-labelledby={id}>
      <h2 id={id} style={{ marginTop: 0 }}>
        <a href={href}>{title}</a>
      </h2>
      {children}
    </section>
  );
}

/** The admin's start page: how the box and its services stand, with links to each part. */
export default async function OverviewPage() {
  await requireAdmin();
  const o = await loadOverview(await stateStore(), crmDb());
  return (
    <>
      <h1>Overview</h1>
      {o.buddies === 0 ? <NoBuddyWarning /> : null}
      <div className="grid" style={{ marginTop: "1rem" }}>
        <Card id="ov-services" href="/admin/services" title="Services">
          <p data-count="services">
            <strong>{plural(o.services, "service")}</strong>: <span className="badge ok">{`${o.ready} ready`}</span> <span className={o.notReady > 0 ? "badge bad" : "badge"}>{`${o.notReady} not ready`}</span>{" "}
            {o.pending > 0 ? <span className="badge warn">{`${o.pending} pending`}</span> : null}
          </p>
          {o.invalidServices > 0 ? <p className="error">{`${plural(o.invalidServices, "service spec file")} ${o.invalidServices === 1 ? "does" : "do"} not validate.`}</p> : null}
        </Card>
        <Card id="ov-alarms" href="/admin/alarms" title="Alarms">
          <p data-count="alarms">
            <span className={o.raisedAlarms > 0 ? "badge bad" : "badge ok"}>{`${o.raisedAlarms} raised`}</span>
            {o.acknowledgedAlarms > 0 ? <span className="muted">{` and ${o.acknowledgedAlarms} acknowledged`}</span> : null}
          </p>
        </Card>
        <Card id="ov-inbox" href="/admin/inbox" title="Inbox">
          <p data-count="inbox">
            <span className={o.pendingInbox > 0 ? "badge warn" : "badge"}>{plural(o.pendingInbox, "pending request")}</span>
          </p>
          {o.badInbox > 0 ? <p className="error">{`${plural(o.badInbox, "inbox file")} ${o.badInbox === 1 ? "does" : "do"} not validate.`}</p> : null}
        </Card>
        <Card id="ov-buddies" href="/admin/buddies" title="Buddies">
          <p data-count="buddies">
            <span className={o.buddies > 0 ? "badge ok" : "badge warn"}>{plural(o.buddies, "buddy", "buddies")}</span>
          </p>
        </Card>
        <Card id="ov-shop" href="/admin/settings" title="Signups">
          <p data-count="signups">{o.server.signupsOpen ? <span className="badge ok">Signups are open</span> : <span className="badge">Signups are closed</span>}</p>
          <p className="muted">{o.server.customerDomain === undefined ? "No customer domain set." : `Customers get names under ${o.server.customerDomain}.`}</p>
        </Card>
      </div>
    </>
  );
}
