"use client";
import { parseServiceList, servicePollMs, type ServiceLiveView } from "../../lib/shop/views.ts";
import { Table } from "../Table.tsx";
import { usePoll } from "../usePoll.ts";

/** A service's Ready badge: ready, still being set up, or not ready (with the minion's reason). */
export function ReadyBadge({ live }: { live: ServiceLiveView }) {
  if (live.ready) return <span className="badge ok">Ready</span>;
  const ready = live.conditions.find((c) => c.type === "Ready");
  if (ready === undefined) return <span className="badge warn">Setting up</span>;
  return (
    <span className="badge warn" title={ready.message}>
      Not ready yet
    </span>
  );
}

/** The customer's services with live Ready badges (polls `/api/me/services`, {@link servicePollMs}). */
export function ServiceList({ initial }: { initial: ServiceLiveView[] }) {
  const { data, problem } = usePoll("/api/me/services", initial, parseServiceList, servicePollMs);
  if (data.length === 0) {
    return <p className="muted">You have no services yet.</p>;
  }
  return (
    <>
      <Table
        columns={["Domain", "Plan", "Status"]}
        items={data}
        row={(live) => (
          <tr key={live.id}>
            <td>
              <a href={`/account/services/${encodeURIComponent(live.id)}`}>{live.domain}</a>
            </td>
            <td>{live.plan.name}</td>
            <td>
              <ReadyBadge live={live} />
            </td>
          </tr>
        )}
      />
      {problem === undefined ? null : <p className="muted">Live updates paused: {problem}.</p>}
    </>
  );
}
