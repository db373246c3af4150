"use client";
import { latestMemory, memorySeries, trafficSummary } from "../../lib/admin/chart.ts";
import { formatTime } from "../../lib/admin/format.ts";
import { POLL_INTERVAL_MS, ServiceDetailPayload } from "../../lib/admin/live.ts";
import { usePoll } from "../usePoll.ts";
import { LineChart } from "./LineChart.tsx";
import { ReadyBadge } from "./ReadyBadge.tsx";
import { ColumnTable, type Column } from "../Table.tsx";

const parseDetail = (json: unknown) => ServiceDetailPayload.safeParse(json).data;

/** A service's conditions as the minion reported them. */
const CONDITION_COLUMNS: readonly Column<ServiceDetailPayload["conditions"][number]>[] = [
  { header: "Type", cell: (c) => c.type },
  { header: "Status", cell: (c) => <span className={c.status === "True" ? "badge ok" : c.status === "False" ? "badge bad" : "badge warn"}>{c.status}</span> },
  { header: "Reason", cell: (c) => c.reason },
  { header: "Message", cell: (c) => c.message },
  { header: "Last transition", cell: (c) => formatTime(c.lastTransitionTime) },
];

/**
 * A service's live part: readiness, every condition, and the traffic and memory charts of the
 * last hour, all refreshed by polling `GET /api/admin/services/<id>`.
 */
export function ServiceLive({ initial }: { initial: ServiceDetailPayload }) {
  const { data, problem: error } = usePoll(`/api/admin/services/${encodeURIComponent(initial.id)}`, initial, parseDetail, POLL_INTERVAL_MS);
  const traffic = trafficSummary(data.points);
  const memory = memorySeries(data.points);
  const behind = data.observedGeneration !== undefined && data.observedGeneration < data.generation;
  return (
    <>
      {error === undefined ? null : (
        <p className="notice warn" role="status">
          Live updates paused: {error}
        </p>
      )}
      <p className="row">
        <ReadyBadge ready={data.ready} />
        {data.ready.message === undefined || data.ready.message === "" ? null : <span>{data.ready.message}</span>}
      </p>
      <p className="muted">
        Spec generation {data.generation}
        {data.observedGeneration === undefined ? ", not yet seen by the minion" : behind ? `; the minion last acted on generation ${data.observedGeneration}` : ", seen by the minion"}
      </p>

      <h2>Conditions</h2>
      <ColumnTable columns={CONDITION_COLUMNS} items={data.conditions} empty="No conditions yet: the minion has not reported on this service." rowKey={(c) => c.type} rowData={(c) => ({ "data-condition": c.type })} />

      <h2>Traffic</h2>
      <LineChart title="Requests per interval over the last hour" points={data.points.map((p) => ({ at: p.at, value: p.requests }))} from={data.from} to={data.to} unit="count" />
      <p data-testid="traffic-summary">{traffic.text}</p>

      <h2>Memory</h2>
      {memory === undefined ? (
        <p className="muted">no memory readings: this service has no sleeping backend</p>
      ) : (
        <>
          <LineChart title="Memory of the service's backend over the last hour" points={memory} from={data.from} to={data.to} unit="bytes" />
          <p>Latest reading: {latestMemory(data.points) ?? "none"}</p>
        </>
      )}
    </>
  );
}
