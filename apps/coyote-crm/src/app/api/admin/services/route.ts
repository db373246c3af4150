import { loadServices } from "../../../../lib/admin/load.ts";
import { requireAdmin } from "../../../../lib/auth.ts";
import { stateStore } from "../../../../lib/state.ts";

/** Always answered fresh: the state folder changes under the panel at any time. */
export const dynamic = "force-dynamic";

/** Every service with its readiness and conditions, and the spec files that do not validate (the services page polls this). */
export async function GET(): Promise<Response> {
  await requireAdmin();
  return Response.json(await loadServices(await stateStore()), { headers: { "cache-control": "no-store" } });
}
