import { parseDetail } from "../../../../lib/admin/audit.ts";
import { readAudit } from "../../../../lib/audit.ts";
import { requireAdmin } from "../../../../lib/auth.ts";
import { crmDb } from "../../../../lib/instance.ts";

/** Always answered fresh: the state folder changes under the panel at any time. */
export const dynamic = "force-dynamic";

/** The newest audit entries first, their details as JSON objects. */
export async function GET(): Promise<Response> {
  await requireAdmin();
  const entries = readAudit(crmDb()).map((entry) => ({ ...entry, detail: parseDetail(entry.detail) }));
  return Response.json({ entries }, { headers: { "cache-control": "no-store" } });
}
