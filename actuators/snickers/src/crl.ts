import { sign, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { OID, authorityKeyIdentifier, binary, bits, ctx, enumerated, extension, fromDer, oid, seq, time, toDer, unsignedInteger, type Asn1 } from "./der.ts";
import { SnickersError } from "./errors.ts";

const { asn1 } = forge;

/** Why a certificate was revoked: the RFC 5280 §5.3.1 reason codes the local CA uses. */
export const REVOCATION_REASONS = { superseded: 4, cessationOfOperation: 5 } as const;
/** Why a certificate was revoked. */
export type RevocationReason = keyof typeof REVOCATION_REASONS;

/** One entry of a CRL. */
export interface RevokedEntry {
  /** The certificate's serial number in hexadecimal. */
  readonly serial: string;
  readonly revokedAt: Date;
  readonly reason: RevocationReason;
}

/** What a CRL says and who signs it. */
export interface CrlRequest {
  /** The issuing CA's certificate in DER: its subject becomes the CRL's issuer, byte for byte. */
  readonly caCertificateDer: Buffer;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** The CRL number, increasing with every CRL the CA issues (RFC 5280 §5.2.3). */
  readonly number: number;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly revoked: readonly RevokedEntry[];
}

/**
 * The subject of a certificate as its DER tree: the CRL's issuer must match the CA's subject,
 * and copying it avoids any difference in how the name would be encoded again.
 */
function subjectOf(certificateDer: Buffer): Asn1 {
  const tbs = (fromDer(certificateDer).value as Asn1[])[0];
  const fields = Array.isArray(tbs?.value) ? tbs.value : [];
  // With the explicit version [0] first, the subject is the sixth field of tbsCertificate.
  const subject = fields[0]?.tagClass === asn1.Class.CONTEXT_SPECIFIC ? fields[5] : fields[4];
  if (subject === undefined) throw new Error("building a CRL: the CA certificate has no subject");
  return subject;
}

/**
 * Builds and signs an X.509 v2 CRL (RFC 5280 §5) with ECDSA P-256 / SHA-256: thisUpdate and
 * nextUpdate, one entry per revoked serial with its reason, and the CRL number and authority key
 * identifier extensions.
 * @returns the CRL in DER.
 */
export function createCrl(request: CrlRequest): Buffer {
  if (!Number.isSafeInteger(request.number) || request.number < 0) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", `building a CRL: the CRL number ${request.number} is not a non-negative whole number`);
  const algorithm = seq([oid(OID.ecdsaWithSha256)]);
  const entries = request.revoked.map((entry) =>
    seq([
      unsignedInteger(Buffer.from(entry.serial.length % 2 === 0 ? entry.serial : `0${entry.serial}`, "hex")),
      time(entry.revokedAt),
      seq([extension(OID.crlReason, false, enumerated(REVOCATION_REASONS[entry.reason]))]),
    ]),
  );
  const number = Buffer.alloc(8);
  number.writeBigUInt64BE(BigInt(request.number));
  const tbs = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x01"), // v2
    algorithm,
    subjectOf(request.caCertificateDer),
    time(request.thisUpdate),
    time(request.nextUpdate),
    // An empty list is left out altogether (RFC 5280 §5.1.2.6).
    ...(entries.length > 0 ? [seq(entries)] : []),
    ctx(0, [seq([authorityKeyIdentifier(request.publicKey), extension(OID.crlNumber, false, unsignedInteger(number))])]),
  ]);
  const tbsDer = toDer(tbs);
  const signature = sign("sha256", tbsDer, { key: request.privateKey, dsaEncoding: "der" });
  return toDer(seq([tbs, algorithm, bits(binary(signature))]));
}
