import type { Metadata } from "next";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import type { AlarmView } from "../../../lib/admin/alarms.ts";
import { formatTime } from "../../../lib/admin/format.ts";
import { loadAlarmBoard } from "../../../lib/admin/load.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { crmDb } from "../../../lib/instance.ts";
import { stateStore } from "../../../lib/state.ts";
import { acknowledgeAlarm } from "./actions.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Alarms" };

function Severity({ alarm }: { alarm: AlarmView }) {
  return <span className={alarm.severity === "critical" ? "badge bad" : alarm.severity === "warning" ? "badge warn" : "badge"}>{alarm.severity}</span>;
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
      {board.raised.length === 0 ? (
        <p className="muted">No alarm is raised.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Severity</th>
              <th scope="col">Source</th>
              <th scope="col">Code</th>
              <th scope="col">Message</th>
              <th scope="col">Raised at</th>
              <th scope="col">Service</th>
              <th scope="col">Acknowledged</th>
            </tr>
          </thead>
          <tbody>
            {board.raised.map((alarm) => (
              <tr key={alarm.key} data-alarm={alarm.raiseId}>
                <td>
                  <Severity alarm={alarm} />
                </td>
                <td>{alarm.source}</td>
                <td>
                  <code>{alarm.code}</code>
                </td>
                <td>{alarm.message}</td>
                <td>{formatTime(alarm.raisedAt)}</td>
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
            ))}
          </tbody>
        </table>
      )}
      <h2>Cleared</h2>
      {board.cleared.length === 0 ? (
        <p className="muted">No alarm has cleared yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Severity</th>
              <th scope="col">Source</th>
              <th scope="col">Code</th>
              <th scope="col">Message</th>
              <th scope="col">Raised at</th>
              <th scope="col">Cleared at</th>
              <th scope="col">Service</th>
            </tr>
          </thead>
          <tbody>
            {board.cleared.map((alarm) => (
              <tr key={alarm.key}>
                <td>
                  <Severity alarm={alarm} />
                </td>
                <td>{alarm.source}</td>
                <td>
                  <code>{alarm.code}</code>
                </td>
                <td>{alarm.message}</td>
                <td>{formatTime(alarm.raisedAt)}</td>
                <td>{formatTime(alarm.at)}</td>
                <td>
                  <ServiceLink alarm={alarm} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
