import type { Readiness } from "../../lib/admin/live.ts";

const CLASS: Record<Readiness["state"], string> = { ready: "badge ok", "not-ready": "badge bad", pending: "badge warn" };

/** A service's readiness as a badge, with the reason of a "Not ready" next to it. */
export function ReadyBadge({ ready }: { ready: Readiness }) {
  return (
    <span title={ready.message === undefined || ready.message === "" ? undefined : ready.message}>
      <span className={CLASS[ready.state]}>{ready.label}</span>
      {ready.state === "not-ready" && ready.reason !== undefined ? <span className="muted"> {ready.reason}</span> : null}
    </span>
  );
}
