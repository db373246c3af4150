import { randomBytes, sign, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { SnickersError } from "./errors.ts";
import { OID, authorityKeyIdentifier, binary, bits, bool, ctx, extension, fromDer, keyIdentifier, name, octets, oid, seq, time, toDer, unsignedInteger, type Asn1 } from "./der.ts";

export { keyIdentifier } from "./der.ts";

const { asn1 } = forge;

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
  /** Where the issuer publishes its CRL (an `http://` URL): written as the CRL distribution point. */
  readonly crlUrl?: string;
  /** The signer: its name and key; the certificate's own when self-signed. */
  readonly issuer: { readonly commonName: string; readonly organization?: string; readonly privateKey: KeyObject; readonly publicKey: KeyObject };
}

/**
 * A new certificate serial: 127 random bits (RFC 5280 §4.1.2.2 wants at most 20 octets; CA/B
 * Forum at least 64 random bits). The top byte is kept in 0x40-0x7f, so the INTEGER is positive and
 * never needs a leading zero byte, which OpenSSL would refuse as non-minimal.
 */
function newSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  return serial;
}

/** The CRL distribution points extension with one full-name URI (RFC 5280 §4.2.1.13). */
function crlDistributionPoints(url: string): Asn1 {
  if (!/^http:\/\/[\x21-\x7e]+$/.test(url)) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", `a CRL distribution point must be a plain http:// URL of printable ASCII, not ${JSON.stringify(url)}`);
  // distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } }
  return extension(OID.crlDistributionPoints, false, seq([seq([ctx(0, [ctx(0, [ctx(6, url)])])])]));
}

/**
 * Builds and signs an X.509 v3 certificate: the structure with node-forge's ASN.1 encoder, the
 * ECDSA P-256 / SHA-256 signature with `node:crypto` (node-forge signs only with RSA; docs/ARCHITECTURE.md, "Dependencies").
 * @returns the certificate in PEM.
 */
export function createCertificate(request: CertificateRequest): string {
  const algorithm = seq([oid(OID.ecdsaWithSha256)]);
  const extensions: Asn1[] = [
    extension(OID.basicConstraints, true, seq(request.isCa ? [bool(true), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x00")] : [])),
    // keyCertSign + cRLSign for a CA (bits 5 and 6), digitalSignature (bit 0) for a server.
    extension(OID.keyUsage, true, asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, request.isCa ? "\x01\x06" : "\x07\x80")),
    extension(OID.subjectKeyIdentifier, false, octets(binary(keyIdentifier(request.publicKey)))),
    authorityKeyIdentifier(request.issuer.publicKey),
  ];
  if (!request.isCa) {
    extensions.push(extension(OID.extKeyUsage, false, seq([oid(OID.serverAuth)])));
    extensions.push(extension(OID.subjectAltName, false, seq(request.dnsNames.map((dns) => ctx(2, dns)))));
  }
  if (request.crlUrl !== undefined) extensions.push(crlDistributionPoints(request.crlUrl));
  const tbs = seq([
    ctx(0, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, "\x02")]),
    unsignedInteger(newSerial()),
    algorithm,
    name(request.issuer.commonName, request.issuer.organization),
    seq([time(request.notBefore), time(request.notAfter)]),
    name(request.commonName, request.organization),
    fromDer(request.publicKey.export({ type: "spki", format: "der" })),
    ctx(3, [seq(extensions)]),
  ]);
  const tbsDer = toDer(tbs);
  const signature = sign("sha256", tbsDer, { key: request.issuer.privateKey, dsaEncoding: "der" });
  const der = toDer(seq([tbs, seq([oid(OID.ecdsaWithSha256)]), bits(binary(signature))]));
  const body = der.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${body}${body.endsWith("\n") ? "" : "\n"}-----END CERTIFICATE-----\n`;
}
