// The one place that decides who may reach what, before Next.js sees a request. Pages and actions
// check again (requireAdmin, requireCustomer), so a mistake in one layer does not open a route.
import { hasControlOrSpace } from "./paths.ts";

/** What the gate knows about a request. */
export interface GateInput {
  readonly method: string;
  /** The path, without the query. */
  readonly path: string;
  /** Whether the server spec says the box is activated. */
  readonly activated: boolean;
  /** The signed-in user's role, if any. */
  readonly role: "admin" | "customer" | undefined;
  /** The request's Origin header (or the origin of its Referer), if any. */
  readonly origin: string | undefined;
  /** The origins this panel is reached at (from the Host header). */
  readonly ownOrigins: readonly string[];
}

/** The gate's answer. */
export type GateDecision =
  | { readonly kind: "pass" }
  | { readonly kind: "redirect"; readonly location: string }
  | { readonly kind: "deny"; readonly status: 401 | 403; readonly reason: string };

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Paths anyone may fetch at any time: the app's compiled assets (no session or state is looked at). */
export function isAsset(path: string): boolean {
  return path.startsWith("/_next/static/") || path === "/favicon.ico" || path === "/icon.svg" || path === "/robots.txt";
}

function under(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/**
 * Like {@link under}, for protected folders: in any letter case, and also for a name that only
 * adds a suffix after a dot (`/admin.rsc`, `/admin.txt`), which some servers map to the folder's
 * page. Wider than the routes on purpose: a false "protected" costs nothing.
 */
function guarded(path: string, prefix: string): boolean {
  const lower = path.toLowerCase();
  return under(lower, prefix) || lower.startsWith(`${prefix}.`);
}

/** Whether a path (decoded and normalised, see paths.ts) is the admin's: the panel's pages and its API. */
export function isAdminPath(path: string): boolean {
  return guarded(path, "/admin") || guarded(path, "/api/admin");
}

/** Whether a path (decoded and normalised) is a signed-in customer's. */
export function isCustomerPath(path: string): boolean {
  return guarded(path, "/account") || guarded(path, "/api/me");
}

/**
 * Decides a request:
 * - a mutation (any method but GET/HEAD/OPTIONS) must come from this panel's own origin (CSRF);
 * - before activation only the wizard (`/activate`) and sign-in are served, everything else goes there;
 * - after activation the wizard is gone;
 * - `/admin` and `/api/admin` need the admin role: 401 without a session, 403 for a customer;
 * - `/account` and `/api/me` need a signed-in customer (an admin is sent to the panel).
 */
export function decide(input: GateInput): GateDecision {
  const { path, method } = input;
  if (isAsset(path)) return { kind: "pass" };
  const api = guarded(path, "/api");
  if (!SAFE_METHODS.has(method) && (input.origin === undefined || !input.ownOrigins.includes(input.origin))) {
    return { kind: "deny", status: 403, reason: "a change must come from this panel's own pages (the Origin header is missing or foreign)" };
  }
  if (!input.activated) {
    // The sign-in page too: an admin whose session ended half-way through the wizard signs in again.
    if (under(path, "/activate") || path === "/login") return { kind: "pass" };
    if (api) return { kind: "deny", status: 403, reason: "the box is not activated yet" };
    return { kind: "redirect", location: "/activate" };
  }
  if (under(path, "/activate")) {
    // The wizard's last steps run while its admin is signed in; once done, it leads to the panel.
    return { kind: "redirect", location: input.role === "admin" ? "/admin" : "/login" };
  }
  if (isAdminPath(path)) {
    if (input.role === undefined) return { kind: "deny", status: 401, reason: "sign in as the admin to see this" };
    if (input.role !== "admin") return { kind: "deny", status: 403, reason: "this is for the box's admin only" };
    return { kind: "pass" };
  }
  if (isCustomerPath(path)) {
    if (input.role === undefined) {
      if (api) return { kind: "deny", status: 401, reason: "sign in to see this" };
      return { kind: "redirect", location: `/login?next=${encodeURIComponent(path)}` };
    }
    if (input.role === "admin") return api ? { kind: "deny", status: 403, reason: "this is for customers" } : { kind: "redirect", location: "/admin" };
    return { kind: "pass" };
  }
  return { kind: "pass" };
}

const NEXT_BASE = "http://panel.invalid";

/**
 * A `next` parameter that is safe to redirect to after sign-in: a path on this site, else
 * `fallback`. Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so
 * `/\t/evil.example` would leave the site: any control character or backslash is refused, and
 * what is left must resolve, as a URL against this site, to this site's own origin.
 */
export function safeNext(next: string | null | undefined, fallback: string): string {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//")) return fallback;
  if (next.includes("\\") || hasControlOrSpace(next)) return fallback;
  let url: URL;
  try {
    url = new URL(next, NEXT_BASE);
  } catch {
    return fallback;
  }
  if (url.origin !== NEXT_BASE) return fallback;
  return `${url.pathname}${url.search}${url.hash}`;
}
