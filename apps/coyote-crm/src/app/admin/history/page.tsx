import type { Metadata } from "next";
import { ServiceId } from "@coyote/spec";
import { formatTime, shortRevision } from "../../../lib/admin/format.ts";
import { Revision } from "../../../lib/admin/history.ts";
import { requireAdmin } from "../../../lib/auth.ts";
import { stateStore } from "../../../lib/state.ts";
import { Table } from "../../../components/Table.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "History" };

/** How many commits the page lists. */
const LIMIT = 100;

function param(params: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = params[name];
  return typeof value === "string" ? value : undefined;
}

/** The note after a rollback, from the redirect's query (each part checked, since anyone can type a URL). */
function RolledBack({ params }: { params: Record<string, string | string[] | undefined> }) {
  const from = Revision.safeParse(param(params, "rolledBack"));
  if (!from.success) return null;
  const to = Revision.safeParse(param(params, "revision"));
  const changed = Number(param(params, "changed") ?? "0");
  return (
    <p className="notice ok" role="status">
      {Number.isInteger(changed) && changed > 0
        ? `Rolled back to ${from.data}: ${changed} spec files changed${to.success ? ` in the new revision ${to.data}` : ""}.`
        : `The specs already were as at ${from.data}: nothing changed.`}
    </p>
  );
}

/** The specs history, newest first; `?service=<id>` shows only the commits of one service. */
export default async function HistoryPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  await requireAdmin();
  const params = await searchParams;
  const service = ServiceId.safeParse(param(params, "service"));
  const store = await stateStore();
  const entries = await store.history(service.success ? service.data : undefined, LIMIT);
  return (
    <>
      <h1>History</h1>
      <RolledBack params={params} />
      <p className="muted">
        Every change to the specs is a commit.
        {service.success ? (
          <>
            {" "}
            Showing the commits of service <a href={`/admin/services/${service.data}`}>{service.data}</a>; <a href="/admin/history">show all</a>.
          </>
        ) : (
          ` The last ${LIMIT} are listed.`
        )}
      </p>
      <Table
        columns={["Revision", "Date", "Author", "Message", "Files"]}
        items={entries}
        empty="No commits yet."
        row={(entry) => (
          <tr key={entry.revision} data-revision={entry.revision}>
            <td>
              <a href={`/admin/history/${entry.revision}`}>
                <code>{shortRevision(entry.revision)}</code>
              </a>
            </td>
            <td>{formatTime(entry.date)}</td>
            <td>{entry.author.name}</td>
            <td>{entry.message}</td>
            <td>
              {entry.files.length === 0 ? (
                <span className="muted">none</span>
              ) : (
                entry.files.map((file) => (
                  <div key={file}>
                    <code>{file}</code>
                  </div>
                ))
              )}
            </td>
          </tr>
        )}
      />
    </>
  );
}
