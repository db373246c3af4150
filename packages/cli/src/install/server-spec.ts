/**
 * The server spec of a production box, from what the installer detected and was told. A first
 * install writes the whole spec: the public ports, Knot on port 53, mail and XMPP on every
 * address. A later run (the same installer again, or an upgrade) keeps whatever the admin has
 * changed since and only applies what the installer was told this time, so that a second run
 * changes nothing.
 */
import type { ServerSpec } from "@coyote/spec";

/** Let's Encrypt's production directory, used when the installer is given an e-mail address. */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

/** What the installer knows of the machine and was told by its flags. */
export interface InstallChoices {
  /** The box's hostname (`--hostname`, or the machine's fully qualified name). */
  readonly hostname: string;
  /** Whether `--hostname` named it: then it replaces the hostname of an existing spec. */
  readonly hostnameGiven: boolean;
  /** The public IPv4 address, when the machine has one. */
  readonly publicIPv4?: string;
  /** The public IPv6 address, when the machine has one. */
  readonly publicIPv6?: string;
  /** The address Let's Encrypt writes to (`--email`); without it, certificates come from the box's own CA. */
  readonly email?: string;
}

/** The spec's fields an install sets, as `applySpec` takes them. */
export type ServerSpecInput = Record<string, unknown>;

/**
 * The server spec to apply, or undefined when the existing one already says everything.
 * @param existing the current server spec, if any.
 * @param choices what the installer detected and was told.
 */
export function installServerSpec(existing: ServerSpec | undefined, choices: InstallChoices): ServerSpecInput | undefined {
  const certificates = choices.email === undefined ? undefined : { mode: "acme", directoryUrl: LETS_ENCRYPT_DIRECTORY, email: choices.email };
  if (existing === undefined) {
    return {
      schemaVersion: 1,
      kind: "Server",
      name: choices.hostname,
      hostname: choices.hostname,
      ...(choices.publicIPv4 === undefined ? {} : { publicIPv4: choices.publicIPv4 }),
      ...(choices.publicIPv6 === undefined ? {} : { publicIPv6: choices.publicIPv6 }),
      certificates: certificates ?? { mode: "local-ca" },
      dns: { backend: "knot", listen: ["0.0.0.0:53", "[::]:53"] },
      mail: { smtpListen: "0.0.0.0:25", submissionListen: "0.0.0.0:587", submissionsListen: "0.0.0.0:465", imapListen: "0.0.0.0:143", imapsListen: "0.0.0.0:993" },
      xmpp: { interfaces: ["0.0.0.0", "::"], clientPort: 5222, serverPort: 5269, httpPort: 5280 },
      ports: { http: 80, https: 443, panel: 3000 },
    };
  }
  // Only what this run was told explicitly; the addresses follow the machine.
  const { generation: _generation, ...kept } = existing;
  const next: Record<string, unknown> = { ...kept };
  if (choices.hostnameGiven) next.hostname = choices.hostname;
  if (choices.publicIPv4 !== undefined) next.publicIPv4 = choices.publicIPv4;
  if (choices.publicIPv6 !== undefined) next.publicIPv6 = choices.publicIPv6;
  if (certificates !== undefined && (existing.certificates.mode !== "acme" || existing.certificates.email !== choices.email)) next.certificates = certificates;
  const same = next.hostname === existing.hostname && next.publicIPv4 === existing.publicIPv4 && next.publicIPv6 === existing.publicIPv6 && next.certificates === existing.certificates;
  return same ? undefined : next;
}
