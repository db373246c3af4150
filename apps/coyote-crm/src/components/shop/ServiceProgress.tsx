"use client";
import { formatBytes, formatCount } from "../../lib/shop/format.ts";
import { parseServiceLive, servicePollMs, type ServiceLiveView } from "../../lib/shop/views.ts";
import { usePoll } from "../usePoll.ts";

/** The status block: "Setting up your service…" with the conditions, or "Your service is ready". */
export function StatusBlock({ live }: { live: ServiceLiveView }) {
  if (live.ready) {
    return (
      <div role="status" aria-live="polite" className="notice ok">
        Your service is ready
      </div>
    );
  }
  return (
    <div role="status" aria-live="polite" className="notice warn">
      <p>
        <strong>Setting up your service…</strong>
      </p>
      {live.conditions.length === 0 ? (
        <p>Waiting for the box to pick up your new service.</p>
      ) : (
        <ul>
          {live.conditions.map((c) => (
            <li key={c.type}>{`${c.type}: ${c.status}${c.message === "" ? "" : ` (${c.message})`}`}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** The last day's traffic and memory of a service. */
export function UsageBlock({ live }: { live: ServiceLiveView }) {
  const { usage } = live;
  return (
    <table aria-label={`Usage in the last ${usage.windowHours} hours`}>
      <tbody>
        <tr>
          <th scope="row">Requests</th>
          <td>{formatCount(usage.requests)}</td>
        </tr>
        <tr>
          <th scope="row">Data sent</th>
          <td>{formatBytes(usage.bytesOut)}</td>
        </tr>
        {usage.memoryBytes === null ? null : (
          <tr>
            <th scope="row">Memory</th>
            <td>{formatBytes(usage.memoryBytes)}</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

/**
 * The live part of a service page: it polls `/api/me/services/[id]` ({@link servicePollMs}) and
 * re-renders the status and the usage, so that the customer watches their service come up.
 */
export function ServiceProgress({ initial }: { initial: ServiceLiveView }) {
  const { data, problem } = usePoll(`/api/me/services/${encodeURIComponent(initial.id)}`, initial, parseServiceLive, servicePollMs);
  return (
    <>
      <section aria-label="Status">
        <StatusBlock live={data} />
        {problem === undefined ? null : <p className="muted">Live updates paused: {problem}.</p>}
      </section>
      <section aria-labelledby="usage-heading">
        <h2 id="usage-heading">Usage in the last {data.usage.windowHours} hours</h2>
        <UsageBlock live={data} />
      </section>
    </>
  );
}
