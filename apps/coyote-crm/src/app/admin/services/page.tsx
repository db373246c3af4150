import type { Metadata } from "next";
import { ServicesLive } from "../../../components/admin/ServicesLive.tsx";
import { loadServices } from "../../../lib/admin/load.ts";
import { requireAdmin } from "../../../lib/auth.ts";
import { stateStore } from "../../../lib/state.ts";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Services" };

/** Every service spec with its live status; spec files that do not validate are listed with their error. */
export default async function ServicesPage() {
  await requireAdmin();
  const payload = await loadServices(await stateStore());
  return (
    <>
      <h1>Services</h1>
      <ServicesLive initial={payload} />
    </>
  );
}
