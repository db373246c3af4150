/**
 * What snickers keeps beside each certificate, and the times it decides by: when to renew, and
 * how long to wait after failed orders.
 */
import { randomInt } from "node:crypto";
import { join } from "node:path";
import { z } from "zod";
import { BOX_OWNER, SchemaVersion, ServiceId, Timestamp, WebHostname, certificateFileName } from "@coyote/spec";

/**
 * The owner recorded for the certificate of the box's own hostname (what Postfix, Dovecot and
 * Prosody present): `server`, the name of the server spec, which no service id may take.
 */
export { BOX_OWNER };

/**
 * What snickers knows of one hostname's certificate: `proxy/certs/<host>.json`, next to the
 * `<host>.pem` that snitch-proxy serves. `serviceId` is its owner: the service that named the
 * hostname, or {@link BOX_OWNER} for the box's own hostname. The attempts part is the ACME backoff
 * kept on disk, so a restarted minion does not hammer the CA (Let's Encrypt allows 5 failed
 * authorizations per name per hour).
 */
export const CertificateMeta = z.strictObject({
  schemaVersion: SchemaVersion,
  host: WebHostname,
  serviceId: z.union([ServiceId, z.literal(BOX_OWNER)]),
  certificate: z
    .strictObject({
      issuer: z.enum(["local-ca", "acme"]),
      directoryUrl: z.string().optional(),
      notBefore: Timestamp,
      notAfter: Timestamp,
      renewAfter: Timestamp,
      ariNextCheckAt: Timestamp.optional(),
    })
    .optional(),
  attempts: z.strictObject({
    failures: z.int().min(0),
    nextAttemptAt: Timestamp.optional(),
    lastError: z.string().max(2000).optional(),
  }),
});
/** What snickers knows of one hostname's certificate. */
export type CertificateMeta = z.infer<typeof CertificateMeta>;

/** A certificate's files for a host: `<host>.pem` (what snitch-proxy serves) and `<host>.json`. */
export const pemFile = (certsDir: string, host: string) => join(certsDir, certificateFileName(host));
export const metaFile = (certsDir: string, host: string) => join(certsDir, certificateFileName(host).replace(/\.pem$/, ".json"));

/** When to renew: two thirds into the lifetime, plus up to a thirtieth of it at random. */
export function renewalTime(notBefore: Date, notAfter: Date, random: (max: number) => number = (max) => randomInt(Math.max(1, max))): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  return new Date(notBefore.getTime() + Math.floor((lifetime * 2) / 3) + random(Math.floor(lifetime / 30)));
}

/** How long to wait after the n-th failure in a row: 1, 2, 4 ... minutes, at most 6 hours, ±20 %. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(60_000 * 2 ** Math.max(0, failures - 1), 6 * 3_600_000);
  return Math.round(base * (0.8 + 0.4 * random()));
}
