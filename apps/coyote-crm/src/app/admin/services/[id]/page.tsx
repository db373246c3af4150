import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { ServiceLive } from "../../../../components/admin/ServiceLive.tsx";
import { loadService } from "../../../../lib/admin/load.ts";
import { CHART_WINDOW_MS, serviceDetail } from "../../../../lib/admin/live.ts";
import { needsProof } from "@coyote/spec";
import { ActionButton } from "../../../../components/admin/ActionButton.tsx";
import { csrfToken, requireAdmin } from "../../../../lib/auth.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { serviceSeries } from "../../../../lib/sampler.ts";
import { readServer, stateStore } from "../../../../lib/state.ts";
import { vouchDomain } from "./actions.ts";

/** The page's title in the browser tab, named after what it shows. */
export async function generateMetadata({ params }: { params: Promise<{ id: string }> }): Promise<Metadata> {
  return { title: `Service ${(await params).id}` };
}

/** One service: its conditions and charts (live), its spec, and a link to its history. */
export default async function ServicePage({ params }: { params: Promise<{ id: string }> }) {
  await requireAdmin();
  const { id } = await params;
  const loaded = await loadService(await stateStore(), id);
  if (loaded.kind === "missing") notFound();
  const historyLink = (
    <p>
      <a href={`/admin/history?service=${encodeURIComponent(id)}`}>History of this service's spec</a>
    </p>
  );
  if (loaded.kind === "invalid") {
    return (
      <>
        <h1>{id}</h1>
        <p className="notice error" role="alert">
          This service's spec file does not validate, so the minion leaves the service as it was: {loaded.error}
        </p>
        {historyLink}
      </>
    );
  }
  const now = Date.now();
  const server = await readServer(await stateStore());
  // Domains that wait for their proof: the admin may vouch for them by hand.
  const spec = loaded.spec;
  const unproven = spec.owner === undefined ? [] : spec.domains.filter((d) => needsProof(d, spec, server)).map((d) => d.name);
  const csrf = await csrfToken();
  const initial = serviceDetail(loaded.spec, loaded.status, serviceSeries(crmDb(), id, now - CHART_WINDOW_MS), now);
  return (
    <>
      <h1>{id}</h1>
      {loaded.spec.description === undefined ? null : <p>{loaded.spec.description}</p>}
      <ServiceLive initial={initial} />
      {unproven.length === 0 ? null : (
        <>
          <h2>Domain ownership</h2>
          <p>
            The box serves a customer's own domain once its <code>_coyote-challenge</code> TXT record holds the token the customer's page shows, or once the domain is delegated to this box. Vouch for a domain only when you know it is theirs: the box then serves it at once, and the audit log records who vouched.
          </p>
          <ul>
            {unproven.map((name) => (
              <li key={name}>
                {name} <ActionButton action={vouchDomain} csrf={csrf} fields={{ serviceId: id, domain: name }} label="Vouch for it" pendingLabel="Vouching…" className="secondary" />
              </li>
            ))}
          </ul>
        </>
      )}
      <h2>Spec</h2>
      <pre>{JSON.stringify(loaded.spec, null, 2)}</pre>
      {historyLink}
    </>
  );
}
