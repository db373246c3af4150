import type { Metadata } from "next";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import { NoBuddyWarning } from "../../../components/admin/NoBuddyWarning.tsx";
import { Table } from "../../../components/Table.tsx";
import { heartbeatBadge, heartbeatLabel, heartbeatState, heartbeatText } from "../../../lib/admin/heartbeat.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { readServer, readStats, stateStore } from "../../../lib/state.ts";
import { removeBuddyAction } from "./actions.ts";
import { BuddyForm } from "./BuddyForm.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Buddies" };

/** The buddy servers with their heartbeat state, and the form to add one. */
export default async function BuddiesPage() {
  await requireAdmin();
  const store = await stateStore();
  const [server, listener] = await Promise.all([readServer(store), readStats(store, "coyote-listener")]);
  const csrf = await csrfToken();
  const now = Date.now();
  const { intervalSeconds, missedBeforeDown } = server.heartbeat;
  return (
    <>
      <h1>Buddies</h1>
      <p className="muted">
        Buddies watch each other through heartbeats every {intervalSeconds} s; a buddy silent for {missedBeforeDown} heartbeats ({intervalSeconds * missedBeforeDown} s) is down. <a href="/admin/settings">Change this in the settings.</a>
      </p>
      <Table
        columns={["Name", "Address", "Fingerprint", "Heartbeat", <span className="muted">Remove</span>]}
        items={server.buddies}
        empty={<NoBuddyWarning />}
        row={(buddy) => {
          const state = heartbeatState(buddy.fingerprint, listener, server.heartbeat, now);
          return (
            <tr key={buddy.fingerprint} data-buddy={buddy.name}>
              <td>{buddy.name}</td>
              <td>{buddy.address}</td>
              <td>
                <code style={{ wordBreak: "break-all" }}>{buddy.fingerprint}</code>
              </td>
              <td>
                <span className={`badge ${heartbeatBadge(state)}`}>{heartbeatLabel(state)}</span> {heartbeatText(state)}
              </td>
              <td>
                <ActionButton action={removeBuddyAction} csrf={csrf} fields={{ fingerprint: buddy.fingerprint }} label="Remove" pendingLabel="Removing…" className="danger" />
              </td>
            </tr>
          );
        }}
      />
      <h2>Add a buddy</h2>
      <BuddyForm csrf={csrf} />
    </>
  );
}
