/**
 * The local CA's public files: snickers writes them into `proxy/ca/` of the state folder, and
 * snitch-proxy serves them at fixed paths, for any Host, over plain HTTP and HTTPS, so that
 * clients can check revocation and admins can fetch the CA certificate to trust it.
 */
import { X509Certificate } from "node:crypto";

/** The first certificate of a PEM text (a key may come before it), or undefined when there is none or it does not parse. */
export function firstCertificate(pem: string): X509Certificate | undefined {
  const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (block === undefined) return undefined;
  try {
    return new X509Certificate(block);
  } catch {
    return undefined;
  }
}

/** The path prefix under which snitch-proxy answers only the files below, and 404 for the rest. */
export const LOCAL_CA_URL_PREFIX = "/.well-known/coyote/";

/** One published file: its URL path, its name in `proxy/ca/` and its media type. */
export interface LocalCaPublishedFile {
  readonly urlPath: string;
  readonly file: string;
  readonly contentType: string;
}

/** The CA certificate (PEM) and its certificate revocation list (DER, RFC 5280). */
export const LOCAL_CA_FILES = {
  certificate: { urlPath: `${LOCAL_CA_URL_PREFIX}ca.pem`, file: "ca.pem", contentType: "application/x-pem-file" },
  crl: { urlPath: `${LOCAL_CA_URL_PREFIX}ca.crl`, file: "ca.crl", contentType: "application/pkix-crl" },
} as const satisfies Record<string, LocalCaPublishedFile>;

/** The largest published file snitch-proxy sends (a CRL of many thousand entries fits). */
export const LOCAL_CA_FILE_MAX_BYTES = 1024 * 1024;

/**
 * The CRL distribution point written into every certificate the local CA issues: plain HTTP on
 * port 80 of the box's hostname (RFC 5280 §4.2.1.13: a CRL over HTTPS could need itself to verify).
 * @param hostname the box's hostname, already checked to be a DNS name.
 */
export function localCaCrlUrl(hostname: string): string {
  return `http://${hostname}${LOCAL_CA_FILES.crl.urlPath}`;
}
