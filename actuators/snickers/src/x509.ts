import { createHash, randomBytes, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";

const { asn1 } = forge;
type Asn1 = forge.asn1.Asn1;

const OID = {
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
} as const;

/**
 * Context-specific tags [0], [2] and [3]: forge types a tag number as a universal type, so each
 * is named by the universal type with the same number.
 */
const TAG = { 0: asn1.Type.NONE, 2: asn1.Type.INTEGER, 3: asn1.Type.BITSTRING } as const;
const tag = (n: keyof typeof TAG) => TAG[n];
const seq = (items: Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
const oid = (value: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(value).getBytes());
const octets = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const bool = (value: boolean) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, value ? "\xff" : "\x00");
const bits = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\x00${bytes}`);
const binary = (buffer: Buffer) => buffer.toString("binary");

/** Time as X.509 wants it: UTCTime until 2049, GeneralizedTime after (RFC 5280 §4.1.2.5). */
function time(date: Date): Asn1 {
  return date.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(date))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(date));
}

function name(commonName: string, organization?: string): Asn1 {
  const rdn = (type: string, value: string) =>
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, [seq([oid(type), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(value))])]);
  return seq([...(organization === undefined ? [] : [rdn(OID.organization, organization)]), rdn(OID.commonName, commonName)]);
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  return seq([oid(id), ...(critical ? [bool(true)] : []), octets(asn1.toDer(value).getBytes())]);
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280 §4.2.1.2). */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = asn1.fromDer(binary(publicKey.export({ type: "spki", format: "der" })));
  const bitString = (spki.value as Asn1[])[1];
  const value = typeof bitString?.value === "string" ? bitString.value : "";
  return createHash("sha1").update(Buffer.from(value.slice(1), "binary")).digest();
}

/** What a certificate says and who signs it. */
export interface CertificateRequest {
  readonly commonName: string;
  readonly organization?: string;
  /** DNS names for subjectAltName (none for a CA). */
  readonly dnsNames: readonly string[];
  readonly publicKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A CA certificate (may sign others) or a TLS server certificate. */
  readonly isCa: boolean;
  /** The signer: its name and key; the certificate's own when self-signed. */
  readonly issuer: { readonly commonName: string; readonly organization?: string; readonly privateKey: KeyObject; readonly publicKey: KeyObject };
}

/**
 * Builds and signs an X.509 v3 certificate: the structure with node-forge's ASN.1 encoder, the
 * ECDSA P-256 / SHA-256 signature with `node:crypto` (node-forge signs only with RSA; DESIGN.md).
 * @returns the certificate in PEM.
 */
export function createCertificate(request: CertificateRequest): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // a positive INTEGER
  const algorithm = seq([oid(OID.ecdsaWithSha256)]);
  const extensions: Asn1[] = [
    extension(OID.basicConstraints, true, seq(request.isCa ? [bool(true), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x00")] : [])),
    // keyCertSign + cRLSign for a CA (bits 5 and 6), digitalSignature (bit 0) for a server.
    extension(OID.keyUsage, true, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, request.isCa ? "\x01\x06" : "\x07\x80")),
    extension(OID.subjectKeyIdentifier, false, octets(binary(keyIdentifier(request.publicKey)))),
    extension(OID.authorityKeyIdentifier, false, seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag(0), false, binary(keyIdentifier(request.issuer.publicKey)))])),
  ];
  if (!request.isCa) {
    extensions.push(extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth)])));
    extensions.push(extension(OID.subjectAltName, false, seq(request.dnsNames.map((dns) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag(2), false, dns)))));
  }
  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag(0), true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x02")]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, binary(serial)),
    algorithm,
    name(request.issuer.commonName, request.issuer.organization),
    seq([time(request.notBefore), time(request.notAfter)]),
    name(request.commonName, request.organization),
    asn1.fromDer(binary(request.publicKey.export({ type: "spki", format: "der" }))),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, tag(3), true, [seq(extensions)]),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign("sha256", tbsDer, { key: request.issuer.privateKey, dsaEncoding: "der" });
  const certificate = seq([tbs, seq([oid(OID.ecdsaWithSha256)]), bits(binary(signature))]);
  const der = Buffer.from(asn1.toDer(certificate).getBytes(), "binary");
  const body = der.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${body}${body.endsWith("\n") ? "" : "\n"}-----END CERTIFICATE-----\n`;
}
