import type { Metadata } from "next";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import type { AlarmView } from "../../../lib/admin/alarms.ts";
import { formatTime } from "../../../lib/admin/format.ts";
import { loadAlarmBoard } from "../../../lib/admin/load.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { crmDb } from "../../../lib/instance.ts";
import { stateStore } from "../../../lib/state.ts";
import { acknowledgeAlarm } from "./actions.ts";
import { ColumnTable, type Column } from "../../../components/Table.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Alarms" };

/** The columns both lists start with: severity, source, code, message and when it was raised. */
const ALARM_COLUMNS: readonly Column<AlarmView>[] = [
  { header: "Severity", cell: (alarm) => <span className={alarm.severity === "critical" ? "badge bad" : alarm.severity === "warning" ? "badge warn" : "badge"}>{alarm.severity}</span> },
  { header: "Source", cell: (alarm) => alarm.source },
  { header: "Code", cell: (alarm) => <code>{alarm.code}</code> },
  { header: "Message", cell: (alarm) => alarm.message },
  { header: "Raised at", cell: (alarm) => formatTime(alarm.raisedAt) },
];

/** The service an alarm is about, linked, or none. */
const SERVICE_COLUMN: Column<AlarmView> = {
  header: "Service",
  cell: (alarm) => (alarm.serviceId === undefined ? <span className="muted">none</span> : <a href={`/admin/services/${alarm.serviceId}`}>{alarm.serviceId}</a>),
};

/** The raised alarms with an Acknowledge button each, and the last cleared ones. */
export default async function AlarmsPage() {
  await requireAdmin();
  const board = await loadAlarmBoard(await stateStore(), crmDb());
  const csrf = await csrfToken();
  const acknowledged: Column<AlarmView> = {
    header: "Acknowledged",
    cell: (alarm) =>
      alarm.ack === undefined ? (
        <ActionButton action={acknowledgeAlarm} csrf={csrf} fields={{ alarmId: alarm.raiseId }} label="Acknowledge" pendingLabel="Acknowledging…" className="secondary" />
      ) : (
        <span>
          by {alarm.ack.by} at {formatTime(alarm.ack.at)}
        </span>
      ),
  };
  return (
    <>
      <h1>Alarms</h1>
      {board.warnings.map((warning) => (
        <p key={warning} className="notice warn">
          An unreadable line in alarms.jsonl was skipped: {warning}
        </p>
      ))}
      <h2>Raised</h2>
      <ColumnTable columns={[...ALARM_COLUMNS, SERVICE_COLUMN, acknowledged]} items={board.raised} empty="No alarm is raised." rowKey={(alarm) => alarm.key} rowData={(alarm) => ({ "data-alarm": alarm.raiseId })} />
      <h2>Cleared</h2>
      <ColumnTable columns={[...ALARM_COLUMNS, { header: "Cleared at", cell: (alarm) => formatTime(alarm.at) }, SERVICE_COLUMN]} items={board.cleared} empty="No alarm has cleared yet." rowKey={(alarm) => alarm.key} />
    </>
  );
}
