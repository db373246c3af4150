/**
 * The few DER building blocks the local CA needs for certificates and CRLs, on node-forge's ASN.1
 * encoder (its own X.509 code signs only with RSA; the signatures here come from `node:crypto`).
 */
import { createHash, type KeyObject } from "node:crypto";
import forge from "node-forge";

const { asn1 } = forge;
/** A node of forge's ASN.1 tree. */
export type Asn1 = forge.asn1.Asn1;

/** The object identifiers used by the local CA. */
export const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  crlDistributionPoints: "2.5.29.31",
  crlNumber: "2.5.29.20",
  crlReason: "2.5.29.21",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

/**
 * Context-specific tags: forge types a tag number as a universal type, so each is named by the
 * universal type with the same number.
 */
const TAG = { 0: asn1.Type.NONE, 2: asn1.Type.INTEGER, 3: asn1.Type.BITSTRING, 6: asn1.Type.OID } as const;
/** A context-specific tag `[n]`, primitive (a string value) or constructed (children). */
export function ctx(n: keyof typeof TAG, value: string | Asn1[]): Asn1 {
  return asn1.create(asn1.Class.CONTEXT_SPECIFIC, TAG[n], typeof value !== "string", value);
}
export const seq = (items: Asn1[]): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
export const oid = (value: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
export const octets = (bytes: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
export const bool = (value: boolean): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, value ? "\xff" : "\x00");
export const bits = (bytes: string): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${bytes}`);
export const enumerated = (value: number): Asn1 => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.ENUMERATED, false, String.fromCharCode(value));
/** Bytes as the "binary" strings forge works with. */
export const binary = (buffer: Buffer): string => buffer.toString("binary");

/**
 * A non-negative INTEGER from its big-endian bytes, in the shortest form DER allows: OpenSSL
 * refuses an INTEGER with a needless leading zero byte.
 */
export function unsignedInteger(bytes: Buffer): Asn1 {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  const value = (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, binary(value.length === 0 ? Buffer.from([0]) : value));
}

/** Time as X.509 wants it: UTCTime until 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
export function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

/** A distinguished name of an organization (optional) and a common name. */
export function name(commonName: string, organization?: string): Asn1 {
  const rdn = (type: string, value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([oid(type), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(value))])]);
  return seq([...(organization === undefined ? [] : [rdn(OID.organization, organization)]), rdn(OID.commonName, commonName)]);
}

/** An extension: its id, whether it is critical, and its value (DER inside an OCTET STRING). */
export function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return seq([oid(id), ...(critical ? [bool(true)] : []), octets(asn1.toDer(value).getBytes())]);
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280 §4.2.1.2). */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = asn1.fromDer(binary(publicKey.export({ type: "spki", format: "der" })));
  const bitString = (spki.value as Asn1[])[1];
  const value = typeof bitString?.value === "string" ? bitString.value : "";
  return createHash("sha1").update(Buffer.from(value.slice(1), "binary")).digest();
}

/** The authority key identifier extension naming the signer's key. */
export function authorityKeyIdentifier(issuerPublicKey: KeyObject): Asn1 {
  return extension(OID.authorityKeyIdentifier, false, seq([ctx(0, binary(keyIdentifier(issuerPublicKey)))]));
}

/** Encodes a tree to DER bytes. */
export function toDer(node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), "binary");
}

/** Parses DER bytes into a tree. */
export function fromDer(der: Buffer): Asn1 {
  return asn1.fromDer(binary(der));
}
