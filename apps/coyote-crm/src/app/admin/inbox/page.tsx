import type { Metadata } from "next";
import { ActionButton } from "../../../components/admin/ActionButton.tsx";
import { ColumnTable, type Column } from "../../../components/Table.tsx";
import { formatTime } from "../../../lib/admin/format.ts";
import { requestText, splitInbox, type InboxLists } from "../../../lib/admin/inbox.ts";
import { csrfToken, requireAdmin } from "../../../lib/auth.ts";
import { readInbox, stateStore } from "../../../lib/state.ts";
import { decideInboxRequest } from "./actions.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Inbox" };

/** One file of the inbox with the request it holds. */
type Entry = InboxLists["pending"][number];

/** The columns both lists start with: who asks, what, and for which service. */
const REQUEST_COLUMNS: readonly Column<Entry>[] = [
  {
    header: "From",
    cell: ({ request }) => (
      <>
        {request.from.name ?? <span className="muted">unnamed</span>}
        <br />
        <span className="muted">{request.from.address}</span>
        <br />
        <code style={{ wordBreak: "break-all", fontSize: "0.75rem" }}>{request.from.fingerprint}</code>
      </>
    ),
  },
  {
    header: "Request",
    cell: ({ request }) => (
      <>
        {requestText(request)} <code>{request.request}</code>
      </>
    ),
  },
  { header: "Service", cell: ({ request }) => (request.serviceId === undefined ? <span className="muted">none</span> : <a href={`/admin/services/${request.serviceId}`}>{request.serviceId}</a>) },
];

/** When the listener received the request. */
const RECEIVED_COLUMN: Column<Entry> = { header: "Received", cell: ({ request }) => formatTime(request.receivedAt) };

/** Rows are found by their inbox file. */
const rowKey = ({ file }: Entry) => file;
const rowData = ({ file }: Entry) => ({ "data-inbox-file": file });

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
      <ColumnTable
        columns={[
          ...REQUEST_COLUMNS,
          { header: "Message", cell: ({ request }) => request.message ?? <span className="muted">none</span> },
          RECEIVED_COLUMN,
          {
            header: "Decision",
            cell: ({ file }) => (
              <div className="row">
                <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "accept" }} label="Accept" pendingLabel="Accepting…" />
                <ActionButton action={decideInboxRequest} csrf={csrf} fields={{ file, decision: "refuse" }} label="Refuse" pendingLabel="Refusing…" className="danger" />
              </div>
            ),
          },
        ]}
        items={lists.pending}
        empty="No request is waiting."
        rowKey={rowKey}
        rowData={rowData}
      />
      <h2>Decided</h2>
      <ColumnTable
        columns={[
          ...REQUEST_COLUMNS,
          RECEIVED_COLUMN,
          {
            header: "Decision",
            cell: ({ request }) => (
              <>
                <span className={request.state === "accepted" ? "badge ok" : "badge bad"}>{request.state}</span>
                <br />
                <span className="muted">
                  {request.decidedBy === undefined ? "" : `by ${request.decidedBy} `}
                  {request.decidedAt === undefined ? "" : `at ${formatTime(request.decidedAt)}`}
                </span>
              </>
            ),
          },
        ]}
        items={lists.decided}
        empty="No request has been decided yet."
        rowKey={rowKey}
        rowData={rowData}
      />
    </>
  );
}
