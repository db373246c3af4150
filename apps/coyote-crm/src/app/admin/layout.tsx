import type { ReactNode } from "react";
import { AdminNav } from "../../components/admin/AdminNav.tsx";
import { requireAdmin } from "../../lib/auth.ts";

/** The admin's frame: the sidebar with every admin page, and the page. */
export default async function AdminLayout({ children }: { children: ReactNode }) {
  // The gate has refused everyone but the admin already; this is the second lock on the door.
  await requireAdmin();
  return (
    <div className="sidebar-layout">
      <aside className="sidebar">
        <AdminNav />
      </aside>
      <main>{children}</main>
    </div>
  );
}
