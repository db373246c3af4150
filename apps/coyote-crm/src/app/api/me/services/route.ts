import { requireCustomer } from "../../../../lib/auth.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { customerServiceRows, serviceLive } from "../../../../lib/shop/services.ts";
import { stateStore } from "../../../../lib/state.ts";

/** Status and usage change all the time: never cached, never prerendered. */
export const dynamic = "force-dynamic";

/** The signed-in customer's services: conditions, ready flag and usage of each. */
export async function GET(): Promise<Response> {
  const user = await requireCustomer();
  const db = crmDb();
  const store = await stateStore();
  const services = await Promise.all(customerServiceRows(db, user.id).map((row) => serviceLive(db, store, row)));
  return Response.json({ services }, { headers: { "cache-control": "no-store" } });
}
