import { join, resolve, sep } from "node:path";
import { CoyoteError } from "./errors.ts";
import { ServiceId, SiteRelativePath } from "./primitives.ts";

/** The folder, inside the state folder, that holds every service's own site folder. */
export const SITES_DIR = "sites";

/**
 * A service's own site folder: `<state>/sites/<id>`. A static backend serves only from inside it.
 * @param stateRoot the state folder, absolute.
 * @param serviceId the service's id.
 */
export function siteFolder(stateRoot: string, serviceId: string): string {
  if (!ServiceId.safeParse(serviceId).success) throw new CoyoteError("SPEC_ERR_INVALID", `resolving the site folder: not a service id: ${JSON.stringify(serviceId)}`);
  return resolve(stateRoot, SITES_DIR, serviceId);
}

/**
 * The absolute folder a static backend's `root` names, confined to the service's site folder.
 * The schema already refuses `..` and absolute paths; the prefix check here is the second wall,
 * so that a spec that bypassed validation still cannot name a folder outside. Symbolic links
 * inside the site folder are the serving side's to refuse (it resolves them at request time).
 * @param stateRoot the state folder, absolute.
 * @param serviceId the service's id.
 * @param root the backend's `root`, relative to the site folder.
 * @throws CoyoteError SPEC_ERR_INVALID when `root` is not a folder inside the site folder.
 */
export function staticRootFolder(stateRoot: string, serviceId: string, root: string): string {
  const base = siteFolder(stateRoot, serviceId);
  const full = resolve(base, root);
  if (!SiteRelativePath.safeParse(root).success || (full !== base && !full.startsWith(`${base}${sep}`))) {
    throw new CoyoteError("SPEC_ERR_INVALID", `resolving the static root of service ${serviceId}: ${JSON.stringify(root)} is not a folder inside ${join(SITES_DIR, serviceId)}`);
  }
  return full;
}
