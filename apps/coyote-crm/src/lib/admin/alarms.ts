// The alarms as the admin sees them: `alarms.jsonl` folded by key, each raise with the id of the
// line that began it, so that an acknowledgement holds for that raise (through repeated "still
// raised" lines) and a new raise after a clear needs a new one.
import type { Alarm } from "@coyote/spec";

/** An admin's acknowledgement of one raise (a row of `alarm_acks`). */
export interface AlarmAck {
  readonly alarmId: string;
  readonly by: string;
  readonly at: string;
}

/** An alarm as it stands: its last line, when and by which line its current raise began, and any acknowledgement. */
export interface AlarmView {
  /** The id of the line that began the latest raise (what an acknowledgement is keyed by). */
  readonly raiseId: string;
  readonly key: string;
  readonly state: "raised" | "cleared";
  readonly severity: Alarm["severity"];
  readonly source: string;
  readonly code: string;
  readonly message: string;
  readonly serviceId: string | undefined;
  readonly raisedAt: string;
  /** The time of the last line (for a cleared alarm: when it cleared). */
  readonly at: string;
  readonly ack: AlarmAck | undefined;
}

/** The folded alarms. */
export interface AlarmBoard {
  /** Raised alarms, newest raise first. */
  readonly raised: AlarmView[];
  /** Cleared alarms, last cleared first, at most `clearedLimit`. */
  readonly cleared: AlarmView[];
}

/** How many cleared alarms the page lists. */
export const CLEARED_LIMIT = 50;

/** Folds alarm lines (in file order) by key and joins the acknowledgements. */
export function foldAlarms(lines: readonly Alarm[], acks: readonly AlarmAck[], clearedLimit = CLEARED_LIMIT): AlarmBoard {
  const byKey = new Map<string, { last: Alarm; raiseId: string; raisedAt: string }>();
  for (const line of lines) {
    const before = byKey.get(line.key);
    const newRaise = line.state === "raised" && before?.last.state !== "raised";
    byKey.set(line.key, {
      last: line,
      raiseId: newRaise || before === undefined ? line.id : before.raiseId,
      raisedAt: newRaise || before === undefined ? line.at : before.raisedAt,
    });
  }
  const ackById = new Map(acks.map((a) => [a.alarmId, a]));
  const views: AlarmView[] = [...byKey.values()].map(({ last, raiseId, raisedAt }) => ({
    raiseId,
    key: last.key,
    state: last.state,
    severity: last.severity,
    source: last.source,
    code: last.code,
    message: last.message,
    serviceId: last.serviceId,
    raisedAt,
    at: last.at,
    ack: ackById.get(raiseId),
  }));
  const raised = views.filter((v) => v.state === "raised").sort((a, b) => b.raisedAt.localeCompare(a.raisedAt));
  const cleared = views
    .filter((v) => v.state === "cleared")
    .sort((a, b) => b.at.localeCompare(a.at))
    .slice(0, clearedLimit);
  return { raised, cleared };
}

/** The raised alarms nobody has acknowledged yet: what the overview counts. */
export function unacknowledged(board: AlarmBoard): AlarmView[] {
  return board.raised.filter((a) => a.ack === undefined);
}
