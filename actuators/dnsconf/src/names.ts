/**
 * Domain name helpers shared by the zone model, the renderers and the built-in server. Names are
 * handled as lowercase strings without the trailing dot, as the spec schemas write them.
 */

/** The longest domain name in presentation form, without the trailing dot (RFC 1035, 255 octets on the wire). */
export const MAX_NAME_LENGTH = 253;

// A label of a name Coyote itself writes into a zone: letters, digits, hyphens and underscores
// (`_dmarc`, `_xmpp-client._tcp`, `coyote._domainkey`), or a leading `*` for a wildcard.
const OWNER_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Tells whether a lowercase name (no trailing dot) is one a Coyote zone may hold as an owner:
 * labels of a-z, 0-9, hyphens and underscores, optionally `*` as the first label, 253 characters
 * at most.
 */
export function isOwnerName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  return name.split(".").every((label, i) => (i === 0 && label === "*") || OWNER_LABEL.test(label));
}

/** Whether `name` is `zone` itself or a name below it. */
export function isInZone(name: string, zone: string): boolean {
  return name === zone || name.endsWith(`.${zone}`);
}

/**
 * Turns a name relative to a zone (as the spec writes it: `@` for the apex, `www`, `*`, `*.dev`)
 * into an absolute one.
 */
export function absoluteName(relative: string, zone: string): string {
  return relative === "@" ? zone : `${relative}.${zone}`;
}

/**
 * Compares two names in DNSSEC canonical order (RFC 4034, section 6.1): label by label from the
 * right, shorter names first. The names are already lowercase.
 */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const la = a.split(".").reverse();
  const lb = b.split(".").reverse();
  const n = Math.min(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    const x = la[i] ?? "";
    const y = lb[i] ?? "";
    if (x !== y) return x < y ? -1 : 1;
  }
  return la.length - lb.length;
}

/**
 * The canonical text form of an IPv6 address (RFC 5952: lowercase, longest run of zero groups
 * compressed), so that `2001:DB8:0::1` and `2001:db8::1` are one record, not two.
 */
export function canonicalIPv6(address: string): string {
  // The WHATWG URL parser serialises IPv6 hosts exactly as RFC 5952 recommends.
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address.toLowerCase();
  }
}
