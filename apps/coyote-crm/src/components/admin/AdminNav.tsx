"use client";
import { usePathname } from "next/navigation";

/** The admin's pages, in the sidebar's order. */
export const ADMIN_LINKS: ReadonlyArray<{ readonly href: string; readonly label: string }> = [
  { href: "/admin", label: "Overview" },
  { href: "/admin/services", label: "Services" },
  { href: "/admin/alarms", label: "Alarms" },
  { href: "/admin/buddies", label: "Buddies" },
  { href: "/admin/inbox", label: "Inbox" },
  { href: "/admin/plans", label: "Plans" },
  { href: "/admin/history", label: "History" },
  { href: "/admin/audit", label: "Audit log" },
  { href: "/admin/settings", label: "Settings" },
];

/** Whether a link is the current section: the overview only on itself, the others on their subpages too. */
function isCurrent(href: string, path: string): boolean {
  return href === "/admin" ? path === "/admin" : path === href || path.startsWith(`${href}/`);
}

/** The admin's sidebar navigation; the current section is marked for the eye and for screen readers. */
export function AdminNav() {
  const path = usePathname();
  return (
    <nav aria-label="Admin">
      {ADMIN_LINKS.map((link) => (
        <a key={link.href} href={link.href} aria-current={isCurrent(link.href, path) ? "page" : undefined}>
          {link.label}
        </a>
      ))}
    </nav>
  );
}
