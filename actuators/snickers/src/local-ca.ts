import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { chmodExact, writeFileAtomic } from "@coyote/spec";
import { createCertificate } from "./x509.ts";

const DAY = 86_400_000;

/** A certificate and its key, as PEM. */
export interface IssuedCertificate {
  /** The private key (PKCS#8). */
  readonly keyPem: string;
  /** The leaf certificate followed by its issuers. */
  readonly chainPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A new ECDSA P-256 key pair (DESIGN.md: certificate keys are P-256). */
export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/**
 * The box's own certificate authority: the embedded default when ACME is off. Its key
 * (`proxy/ca/ca-key.pem`, 0600) and certificate (`proxy/ca/ca.pem`, for people to trust) are made
 * once and kept; it issues 90-day server certificates, like Let's Encrypt, so renewal is exercised
 * the same way in both modes.
 */
export class LocalCa {
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #commonName: string;
  /** The CA certificate in PEM. */
  readonly certificatePem: string;

  private constructor(privateKey: KeyObject, certificatePem: string) {
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
    this.certificatePem = certificatePem;
    this.#commonName = new X509Certificate(certificatePem).subject.split("\n").find((line) => line.startsWith("CN="))?.slice(3) ?? "Coyote local CA";
  }

  /**
   * Loads the CA of a folder, making it first when there is none.
   * @param dir `proxy/ca` of the state folder.
   * @param label names the CA (the box's hostname), so that people can tell boxes apart.
   */
  static async open(dir: string, label: string): Promise<LocalCa> {
    const keyFile = join(dir, "ca-key.pem");
    const certFile = join(dir, "ca.pem");
    try {
      const [keyPem, certPem] = await Promise.all([readFile(keyFile, "utf8"), readFile(certFile, "utf8")]);
      return new LocalCa(createPrivateKey(keyPem), certPem);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new Error(`loading the local CA in ${dir}: ${(error as Error).message}`, { cause: error });
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmodExact(dir, 0o700);
    const { privateKey, publicKey } = newKeyPair();
    const now = Date.now();
    const commonName = `Coyote local CA (${label})`.slice(0, 64);
    const certificatePem = createCertificate({
      commonName,
      organization: "Coyote",
      dnsNames: [],
      publicKey,
      notBefore: new Date(now - DAY),
      notAfter: new Date(now + 3650 * DAY),
      isCa: true,
      issuer: { commonName, organization: "Coyote", privateKey, publicKey },
    });
    // The key first: a certificate without its key would be a CA nobody can use.
    await writeFileAtomic(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    await writeFileAtomic(certFile, certificatePem, { mode: 0o644 });
    return new LocalCa(privateKey, certificatePem);
  }

  /**
   * Issues a server certificate for DNS names (the first is the subject).
   * @param lifetimeDays 90 by default.
   */
  issue(dnsNames: readonly string[], lifetimeDays = 90, now = Date.now()): IssuedCertificate {
    const first = dnsNames[0];
    if (first === undefined) throw new Error("issuing a local certificate: no DNS name given");
    const { privateKey, publicKey } = newKeyPair();
    const notBefore = new Date(now - 3_600_000);
    const notAfter = new Date(now + lifetimeDays * DAY);
    const leaf = createCertificate({
      commonName: first,
      dnsNames,
      publicKey,
      notBefore,
      notAfter,
      isCa: false,
      issuer: { commonName: this.#commonName, organization: "Coyote", privateKey: this.#privateKey, publicKey: this.#publicKey },
    });
    return { keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), chainPem: leaf + this.certificatePem, notBefore, notAfter };
  }
}
