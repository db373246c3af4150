import type { Metadata } from "next";
import { Table } from "../../../components/Table.tsx";
import { detailText, parseDetail } from "../../../lib/admin/audit.ts";
import { formatTime } from "../../../lib/admin/format.ts";
import { readAudit } from "../../../lib/audit.ts";
import { requireAdmin } from "../../../lib/auth.ts";
import { crmDb } from "../../../lib/instance.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Audit log" };

/** Every admin action, newest first. */
export default async function AuditPage() {
  await requireAdmin();
  const entries = readAudit(crmDb());
  return (
    <>
      <h1>Audit log</h1>
      <p className="muted">The last {entries.length} admin actions, newest first. Secrets never appear here.</p>
      <Table
        columns={["Time", "Actor", "Action", "Target", "Detail"]}
        items={entries}
        empty="Nothing recorded yet."
        row={(entry) => (
          <tr key={entry.id} data-action={entry.action}>
            <td>{formatTime(entry.at)}</td>
            <td>{entry.actor}</td>
            <td>
              <code>{entry.action}</code>
            </td>
            <td>{entry.target}</td>
            <td style={{ wordBreak: "break-word" }}>{detailText(parseDetail(entry.detail))}</td>
          </tr>
        )}
      />
    </>
  );
}
