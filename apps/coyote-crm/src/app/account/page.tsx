import type { Metadata } from "next";
import { ServiceList } from "../../components/shop/ServiceList.tsx";
import { requireCustomer } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import { customerServiceRows, serviceLive } from "../../lib/shop/services.ts";
import { stateStore } from "../../lib/state.ts";

/** The tab's title. */
export const metadata: Metadata = { title: "My services" };

/** The customer's services, each with its plan and a live Ready badge. */
export default async function AccountPage() {
  const user = await requireCustomer();
  const db = crmDb();
  const store = await stateStore();
  const services = await Promise.all(customerServiceRows(db, user.id).map((row) => serviceLive(db, store, row)));
  return (
    <main className="medium">
      <h1>My services</h1>
      <ServiceList initial={services} />
      <p>
        <a href="/account/password">Change your password</a> (for this panel, your mailbox and your chat account)
      </p>
    </main>
  );
}
