// The starter website a new customer's domain shows until they upload their own: a real page,
// so that the first visit to their new address proves the whole chain (DNS, certificate, proxy).
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "@coyote/spec";
import { CrmError } from "../errors.ts";

/** The folder of a service's static site: `<stateDir>/sites/<serviceId>`, absolute. */
export function siteDir(stateDir: string, serviceId: string): string {
  return resolve(stateDir, "sites", serviceId);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The starter page of a domain: its h1 is `Welcome to <domain>`, and it says that Coyote hosts it. */
export function starterSiteHtml(domain: string): string {
  const name = escapeHtml(domain);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Welcome to ${name}</title>
<link rel="icon" href="data:,">
<style>
  :root { color-scheme: light dark; }
  body { margin: 0; min-height: 100vh; display: grid; place-items: center; font: 18px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: linear-gradient(160deg, #fdf6ef, #f1e4d8); color: #1d2430; }
  main { max-width: 36rem; margin: 2rem; padding: 2.5rem 2rem; background: #fff; border-radius: 14px; box-shadow: 0 10px 30px rgba(29, 36, 48, 0.12); text-align: center; }
  h1 { margin: 0 0 0.75rem; font-size: 2rem; color: #8f3f14; overflow-wrap: anywhere; }
  p { margin: 0.5rem 0; }
  .small { color: #5d6778; font-size: 0.9rem; }
  @media (prefers-color-scheme: dark) {
    body { background: linear-gradient(160deg, #1b1f27, #11161f); color: #e6e9ef; }
    main { background: #1d2430; box-shadow: none; }
    h1 { color: #f0a070; }
    .small { color: #a9b1bf; }
  }
</style>
</head>
<body>
<main>
<h1>Welcome to ${name}</h1>
<p>This website is up and running. Its owner has not published their own pages yet.</p>
<p class="small">Hosted by Coyote, a self-hosting server.</p>
</main>
</body>
</html>
`;
}

/**
 * Writes the starter site of a new service.
 * @param stateDir the crm's state folder.
 * @param serviceId the service's id (its folder's name).
 * @param domain the domain the page welcomes visitors to.
 * @returns the site's folder, absolute (the web backend's root).
 * @throws CrmError CRM_ERR_SITE_WRITE when the folder cannot be written, or already exists, so
 *   that a site that is not this signup's is never overwritten nor, on a rollback, removed.
 */
export async function writeStarterSite(stateDir: string, serviceId: string, domain: string): Promise<string> {
  const dir = siteDir(stateDir, serviceId);
  await mkdir(join(dir, ".."), { recursive: true });
  try {
    await mkdir(dir);
  } catch (cause) {
    throw new CrmError("CRM_ERR_SITE_WRITE", `writing the starter site of ${serviceId}: cannot create ${dir}: ${messageOf(cause)}`, { cause });
  }
  try {
    await writeFileAtomic(join(dir, "index.html"), starterSiteHtml(domain));
  } catch (cause) {
    await rm(dir, { recursive: true, force: true });
    throw new CrmError("CRM_ERR_SITE_WRITE", `writing the starter site of ${serviceId}: ${messageOf(cause)}`, { cause });
  }
  return dir;
}

/** Removes a starter site written by {@link writeStarterSite} (undoing a signup that failed later). */
export async function removeStarterSite(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
