import { loadAlarmBoard } from "../../../../lib/admin/load.ts";
import { requireAdmin } from "../../../../lib/auth.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { stateStore } from "../../../../lib/state.ts";

/** Always answered fresh: the state folder changes under the panel at any time. */
export const dynamic = "force-dynamic";

/** The raised alarms (with their acknowledgements), the last cleared ones, and warnings about unreadable lines. */
export async function GET(): Promise<Response> {
  await requireAdmin();
  return Response.json(await loadAlarmBoard(await stateStore(), crmDb()), { headers: { "cache-control": "no-store" } });
}
