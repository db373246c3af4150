import type { Metadata } from "next";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import type { AlarmView } from "../../../lib/admin/alarms.ts";
import { formatTime } from "../../../lib/admin/format.ts";
import { loadAlarmBoard } from "../../../lib/admin/load.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { crmDb } from "../../../lib/instance.ts";
import { stateStore } from "../../../lib/state.ts";
import { acknowledgeAlarm } from "./actions.ts";
import { Table } from "../../../components/Table.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Alarms" };

/** The cells both lists start with: severity, source, code, message and when it was raised. */
function AlarmCells({ alarm }: { alarm: AlarmView }) {
  return (
    <>
      <td>
        <span className={alarm.severity === "critical" ? "badge bad" : alarm.severity === "warning" ? "badge warn" : "badge"}>{alarm.severity}</span>
      </td>
      <td>{alarm.source}</td>
      <td>
        <code>{alarm.code}</code>
      </td>
      <td>{alarm.message}</td>
      <td>{formatTime(alarm.raisedAt)}</td>
    </>
  );
}

function ServiceLink({ alarm }: { alarm: AlarmView }) {
  return alarm.serviceId === undefined ? <span className="muted">none</span> : <a href={`/admin/services/${alarm.serviceId}`}>{alarm.serviceId}</a>;
}

/** The raised alarms with an Acknowledge button each, and the last cleared ones. */
export default async function AlarmsPage() {
  await requireAdmin();
  const board = await loadAlarmBoard(await stateStore(), crmDb());
  const csrf = await csrfToken();
  return (
    <>
      <h1>Alarms</h1>
      {board.warnings.map((warning) => (
        <p key={warning} className="notice warn">
          An unreadable line in alarms.jsonl was skipped: {warning}
        </p>
      ))}
      <h2>Raised</h2>
      <Table
        columns={["Severity", "Source", "Code", "Message", "Raised at", "Service", "Acknowledged"]}
        items={board.raised}
        empty="No alarm is raised."
        row={(alarm) => (
          <tr key={alarm.key} data-alarm={alarm.raiseId}>
            <AlarmCells alarm={alarm} />
            <td>
              <ServiceLink alarm={alarm} />
            </td>
            <td>
              {alarm.ack === undefined ? (
                <ActionButton action={acknowledgeAlarm} csrf={csrf} fields={{ alarmId: alarm.raiseId }} label="Acknowledge" pendingLabel="Acknowledging…" className="secondary" />
              ) : (
                <span>
                  by {alarm.ack.by} at {formatTime(alarm.ack.at)}
                </span>
              )}
            </td>
          </tr>
        )}
      />
      <h2>Cleared</h2>
      <Table
        columns={["Severity", "Source", "Code", "Message", "Raised at", "Cleared at", "Service"]}
        items={board.cleared}
        empty="No alarm has cleared yet."
        row={(alarm) => (
          <tr key={alarm.key}>
            <AlarmCells alarm={alarm} />
            <td>{formatTime(alarm.at)}</td>
            <td>
              <ServiceLink alarm={alarm} />
            </td>
          </tr>
        )}
      />
    </>
  );
}
