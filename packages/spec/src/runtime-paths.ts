/**
 * Where the actuators' runtime files lie in a state folder, as one contract for their writer and
 * their readers: the mail actuator writes `mail/` (dnsconf reads the DKIM records there); snickers
 * writes `proxy/` (snitch-proxy reads the combined routes, the certificates and the CA's files).
 */
import { join } from "node:path";

/**
 * The files of one runtime folder: `root` (`<stateDir>/<folder>`) and each named entry under it.
 * @param stateDir the state folder.
 * @param folder the folder's name under it.
 * @param entries each path's key and its name inside the folder.
 */
function runtimeFolder<const E extends Readonly<Record<string, string>>>(stateDir: string, folder: string, entries: E): { readonly root: string } & { readonly [K in keyof E]: string } {
  const root = join(stateDir, folder);
  const paths: Record<string, string> = { root };
  for (const [key, name] of Object.entries(entries)) paths[key] = join(root, name);
  return paths as { readonly root: string } & { readonly [K in keyof E]: string };
}

/**
 * The mail actuator's files: `services/<id>.json` (one fragment per service with mail),
 * `dkim/<domain>.key` (0600) and `dkim/<domain>.json` (the DNS record dnsconf publishes),
 * `domains.json` (domain owners as of the last commit) and `postfix-reload-pending` (Postfix files
 * changed and not live yet).
 */
export function mailRuntimePaths(stateDir: string) {
  return runtimeFolder(stateDir, "mail", { services: "services", dkim: "dkim", index: "domains.json", reloadPending: "postfix-reload-pending" });
}

/** The paths {@link mailRuntimePaths} returns. */
export type MailRuntimePaths = ReturnType<typeof mailRuntimePaths>;

/**
 * snickers' files, which snitch-proxy reads: `routes.d/<id>.json` (one routes fragment per
 * service), `routes.json` (all of them combined, with the proxy's settings), `certs/` (a PEM and
 * its metadata per hostname), `ca/` (the local CA and its published files) and `challenges/` (the
 * HTTP-01 answers of orders under way). `acme/` holds snickers' own ACME account keys (0700).
 */
export function proxyRuntimePaths(stateDir: string) {
  return runtimeFolder(stateDir, "proxy", { fragments: "routes.d", routes: "routes.json", certs: "certs", ca: "ca", challenges: "challenges", acme: "acme" });
}

/** The paths {@link proxyRuntimePaths} returns. */
export type ProxyRuntimePaths = ReturnType<typeof proxyRuntimePaths>;
