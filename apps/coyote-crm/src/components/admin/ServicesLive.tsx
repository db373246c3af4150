"use client";
import { POLL_INTERVAL_MS, ServicesPayload } from "../../lib/admin/live.ts";
import { usePoll } from "../usePoll.ts";
import { ReadyBadge } from "./ReadyBadge.tsx";

const parseServices = (json: unknown) => ServicesPayload.safeParse(json).data;

/** The services table, its status badges kept live by polling `GET /api/admin/services`. */
export function ServicesLive({ initial }: { initial: ServicesPayload }) {
  const { data, problem: error } = usePoll("/api/admin/services", initial, parseServices, POLL_INTERVAL_MS);
  if (data.services.length === 0 && data.invalid.length === 0) {
    return <p className="muted">
        No services yet. Customers' signups and <code>coyote spec apply</code> add them.
      </p>;
  }
  return (
    <>
      {error === undefined ? null : (
        <p className="notice warn" role="status">
          Live updates paused: {error}
        </p>
      )}
      <table>
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Domains</th>
            <th scope="col">Owner</th>
            <th scope="col">Plan</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {data.services.map((service) => (
            <tr key={service.id} data-service={service.id}>
              <td>
                <a href={`/admin/services/${service.id}`}>{service.id}</a>
              </td>
              <td>{service.domains.join(", ")}</td>
              <td>{service.owner ?? <span className="muted">none</span>}</td>
              <td>{service.plan ?? <span className="muted">none</span>}</td>
              <td>
                <ReadyBadge ready={service.ready} />
              </td>
            </tr>
          ))}
          {data.invalid.map((bad) => (
            <tr key={`invalid-${bad.id}`} data-service={bad.id}>
              <td>
                <a href={`/admin/services/${bad.id}`}>{bad.id}</a>
              </td>
              <td colSpan={3} className="error">
                {bad.error}
              </td>
              <td>
                <span className="badge bad">Invalid spec</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
