import { requireCustomer } from "../../../../../lib/auth.ts";
import { crmDb } from "../../../../../lib/instance.ts";
import { ownedService, serviceLive } from "../../../../../lib/shop/services.ts";
import { stateStore } from "../../../../../lib/state.ts";

/** Status and usage change all the time: never cached, never prerendered. */
export const dynamic = "force-dynamic";

/**
 * One of the signed-in customer's services: conditions, ready flag and usage. Another customer's
 * service answers exactly like an unknown id (404), so ids cannot be probed.
 */
export async function GET(_request: Request, { params }: { params: Promise<{ id: string }> }): Promise<Response> {
  const user = await requireCustomer();
  const { id } = await params;
  const db = crmDb();
  const row = ownedService(db, user.id, id);
  if (row === undefined) {
    return Response.json({ error: { code: "NOT_FOUND", message: `you have no service ${JSON.stringify(id)}` } }, { status: 404, headers: { "cache-control": "no-store" } });
  }
  return Response.json(await serviceLive(db, await stateStore(), row), { headers: { "cache-control": "no-store" } });
}
