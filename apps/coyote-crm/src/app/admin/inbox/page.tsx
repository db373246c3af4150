import type { Metadata } from "next";
import type { InboxRequest } from "@coyote/spec";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import { formatTime } from "../../../lib/admin/format.ts";
import { requestText, splitInbox } from "../../../lib/admin/inbox.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { readInbox, stateStore } from "../../../lib/state.ts";
import { decideInboxRequest } from "./actions.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Inbox" };

function From({ request }: { request: InboxRequest }) {
  return (
    <>
      {request.from.name ?? <span className="muted">unnamed</span>}
      <br />
      <span className="muted">{request.from.address}</span>
      <br />
      <code style={{ wordBreak: "break-all", fontSize: "0.75rem" }}>{request.from.fingerprint}</code>
    </>
  );
}

function What({ request }: { request: InboxRequest }) {
  return (
    <>
      {requestText(request)} <code>{request.request}</code>
    </>
  );
}

function Service({ request }: { request: InboxRequest }) {
  return request.serviceId === undefined ? <span className="muted">none</span> : <a href={`/admin/services/${request.serviceId}`}>{request.serviceId}</a>;
}

/** Coyote requests from other servers that coyote-listener could not decide alone: pending ones first. */
export default async function InboxPage() {
  await requireAdmin();
  const lists = splitInbox(await readInbox(await stateStore()));
  const csrf = await csrfToken();
  return (
    <>
      <h1>Inbox</h1>
      <p className="muted">Requests from other Coyote servers that this box's listener does not accept on its own wait here for you.</p>
      {lists.bad.map((bad) => (
        <p key={bad.file} className="notice error" data-inbox-file={bad.file}>
          inbox/{bad.file} does not validate: {bad.error}
        </p>
      ))}
      <h2>Pending</h2>
      {lists.pending.length === 0 ? (
        <p className="muted">No request is waiting.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">From</th>
              <th scope="col">Request</th>
              <th scope="col">Service</th>
              <th scope="col">Message</th>
              <th scope="col">Received</th>
              <th scope="col">Decision</th>
            </tr>
          </thead>
          <tbody>
            {lists.pending.map(({ file, request }) => (
              <tr key={file} data-inbox-file={file}>
                <td>
                  <From request={request} />
                </td>
                <td>
                  <What request={request} />
                </td>
                <td>
                  <Service request={request} />
                </td>
                <td>{request.message ?? <span className="muted">none</span>}</td>
                <td>{formatTime(request.receivedAt)}</td>
                <td>
                  <div className="row">
                    <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "accept" }} label="Accept" pendingLabel="Accepting…" />
                    <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "refuse" }} label="Refuse" pendingLabel="Refusing…" className="danger" />
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Decided</h2>
      {lists.decided.length === 0 ? (
        <p className="muted">No request has been decided yet.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">From</th>
              <th scope="col">Request</th>
              <th scope="col">Service</th>
              <th scope="col">Received</th>
              <th scope="col">Decision</th>
            </tr>
          </thead>
          <tbody>
            {lists.decided.map(({ file, request }) => (
              <tr key={file} data-inbox-file={file}>
                <td>
                  <From request={request} />
                </td>
                <td>
                  <What request={request} />
                </td>
                <td>
                  <Service request={request} />
                </td>
                <td>{formatTime(request.receivedAt)}</td>
                <td>
                  <span className={request.state === "accepted" ? "badge ok" : "badge bad"}>{request.state}</span>
                  <br />
                  <span className="muted">
                    {request.decidedBy === undefined ? "" : `by ${request.decidedBy} `}
                    {request.decidedAt === undefined ? "" : `at ${formatTime(request.decidedAt)}`}
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
