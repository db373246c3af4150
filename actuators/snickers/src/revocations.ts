/**
 * The local CA's record of revoked certificates, `proxy/ca/revocations.json`: what every CRL it
 * issues lists, and the number of the last CRL. Entries leave once their certificate would have
 * expired (RFC 5280 §5.1.2.6 allows it; a client rejects an expired certificate anyway).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { SchemaVersion, Timestamp, parseJson, writeFileAtomic } from "@coyote/spec";
import { REVOCATION_REASONS } from "./crl.ts";

/**
 * The most entries the record holds: each costs about 55 bytes of CRL, and the CRL must stay under
 * the size snitch-proxy serves (1 MiB).
 */
export const MAX_REVOKED = 16_000;

/** The revocation record. */
export const RevocationRecord = z.strictObject({
  schemaVersion: SchemaVersion,
  /** The number of the last CRL issued (RFC 5280 §5.2.3). */
  crlNumber: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
  crlThisUpdate: Timestamp.optional(),
  crlNextUpdate: Timestamp.optional(),
  revoked: z
    .array(
      z.strictObject({
        /** Uppercase hexadecimal, as node's X509Certificate prints it. */
        serial: z.string().regex(/^[0-9A-F]{1,40}$/, { error: "a serial is 1-40 uppercase hexadecimal digits" }),
        revokedAt: Timestamp,
        /** When the certificate expires; the entry is dropped after. */
        notAfter: Timestamp,
        reason: z.enum(Object.keys(REVOCATION_REASONS) as [keyof typeof REVOCATION_REASONS]),
        /** The hostname it was for, for people reading the file. */
        host: z.string().max(253).optional(),
      }),
    )
    .max(MAX_REVOKED),
});
/** The revocation record. */
export type RevocationRecord = z.infer<typeof RevocationRecord>;

/**
 * Reads the record; a missing one is empty. A damaged one is an error naming the file and the
 * field: it is neither replaced nor ignored, since that would unrevoke what it lists.
 */
export async function readRevocations(file: string): Promise<RevocationRecord> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { schemaVersion: 1, crlNumber: 0, revoked: [] };
    throw error;
  }
  return parseJson(RevocationRecord, text, file);
}

/** Writes the record atomically (it holds no secret, but lives beside the CA key: 0600). */
export async function writeRevocations(file: string, record: RevocationRecord): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
}
