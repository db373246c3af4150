import { loadService, loadServiceDetail } from "../../../../../lib/admin/load.ts";
import { requireAdmin } from "../../../../../lib/auth.ts";
import { crmDb } from "../../../../../lib/instance.ts";
import { stateStore } from "../../../../../lib/state.ts";

/** Always answered fresh: the state folder changes under the panel at any time. */
export const dynamic = "force-dynamic";

const NO_STORE = { "cache-control": "no-store" };

/** One service's readiness, conditions and the last hour's chart points (the service page polls this). */
export async function GET(_request: Request, context: { params: Promise<{ id: string }> }): Promise<Response> {
  await requireAdmin();
  const { id } = await context.params;
  const store = await stateStore();
  const detail = await loadServiceDetail(store, crmDb(), id);
  if (detail !== undefined) return Response.json(detail, { headers: NO_STORE });
  const loaded = await loadService(store, id);
  if (loaded.kind === "invalid") {
    return Response.json({ error: { code: "SPEC_INVALID", message: `service ${id}: ${loaded.error}` } }, { status: 422, headers: NO_STORE });
  }
  return Response.json({ error: { code: "NOT_FOUND", message: `no service with id ${JSON.stringify(id)}` } }, { status: 404, headers: NO_STORE });
}
