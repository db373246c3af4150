import type { Metadata } from "next";
import type { InboxRequest } from "@coyote/spec";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import { Table } from "../../../components/Table.tsx";
import { formatTime } from "../../../lib/admin/format.ts";
import { requestText, splitInbox } from "../../../lib/admin/inbox.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { readInbox, stateStore } from "../../../lib/state.ts";
import { decideInboxRequest } from "./actions.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Inbox" };

/** The cells both lists start with: who asks, what, and for which service. */
function RequestCells({ request }: { request: InboxRequest }) {
  return (
    <>
      <td>
        {request.from.name ?? <span className="muted">unnamed</span>}
        <br />
        <span className="muted">{request.from.address}</span>
        <br />
        <code style={{ wordBreak: "break-all", fontSize: "0.75rem" }}>{request.from.fingerprint}</code>
      </td>
      <td>
        {requestText(request)} <code>{request.request}</code>
      </td>
      <td>{request.serviceId === undefined ? <span className="muted">none</span> : <a href={`/admin/services/${request.serviceId}`}>{request.serviceId}</a>}</td>
    </>
  );
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
      <Table
        columns={["From", "Request", "Service", "Message", "Received", "Decision"]}
        items={lists.pending}
        empty="No request is waiting."
        row={({ file, request }) => (
          <tr key={file} data-inbox-file={file}>
            <RequestCells request={request} />
            <td>{request.message ?? <span className="muted">none</span>}</td>
            <td>{formatTime(request.receivedAt)}</td>
            <td>
              <div className="row">
                <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "accept" }} label="Accept" pendingLabel="Accepting…" />
                <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "refuse" }} label="Refuse" pendingLabel="Refusing…" className="danger" />
              </div>
            </td>
          </tr>
        )}
      />
      <h2>Decided</h2>
      <Table
        columns={["From", "Request", "Service", "Received", "Decision"]}
        items={lists.decided}
        empty="No request has been decided yet."
        row={({ file, request }) => (
          <tr key={file} data-inbox-file={file}>
            <RequestCells request={request} />
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
        )}
      />
    </>
  );
}
