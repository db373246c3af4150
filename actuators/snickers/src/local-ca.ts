import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from "node:crypto";
import { access, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { LOCAL_CA_FILES, chmodExact, firstCertificate, localCaCrlUrl, writeFileAtomic } from "@coyote/spec";
import { createCrl, type RevocationReason } from "./crl.ts";
import { SnickersError } from "./errors.ts";
import { MAX_REVOKED, readRevocations, writeRevocations, type RevocationRecord } from "./revocations.ts";
import { createCertificate } from "./x509.ts";

const DAY = 86_400_000;
/** How long a CRL is valid; a new one is issued halfway, so clients never hold a stale one. */
export const CRL_VALIDITY_MS = 7 * DAY;
/** A hostname of one or more DNS labels: the only thing put in the CRL distribution point URL. */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A certificate and its key, as PEM. */
export interface IssuedCertificate {
  /** The private key (PKCS#8). */
  readonly keyPem: string;
  /** The leaf certificate followed by its issuers. */
  readonly chainPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A new ECDSA P-256 key pair (every certificate key Coyote makes is P-256). */
export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "P-256" });
}

/**
 * The box's own certificate authority: the embedded default when ACME is off. Its key
 * (`proxy/ca/ca-key.pem`, 0600) and certificate (`proxy/ca/ca.pem`, for people to trust) are made
 * once and kept; it issues 90-day server certificates, like Let's Encrypt, so renewal is exercised
 * the same way in both modes. Each carries a CRL distribution point on the box's hostname; the CRL
 * (`proxy/ca/ca.crl`, DER) lists what {@link LocalCa.revoke} revoked, from the record in
 * `proxy/ca/revocations.json`, and is issued again halfway through its week of validity.
 */
export class LocalCa {
  readonly #dir: string;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #certificate: X509Certificate;
  readonly #commonName: string;
  readonly #crlUrl: string;
  #record: RevocationRecord;
  /** Revocations and CRLs one at a time: each rewrites the record and the CRL. */
  #queue: Promise<unknown> = Promise.resolve();
  /** The CA certificate in PEM. */
  readonly certificatePem: string;

  private constructor(dir: string, privateKey: KeyObject, certificatePem: string, hostname: string, record: RevocationRecord) {
    this.#dir = dir;
    this.#privateKey = privateKey;
    this.#publicKey = createPublicKey(privateKey);
    this.certificatePem = certificatePem;
    this.#certificate = new X509Certificate(certificatePem);
    this.#commonName = this.#certificate.subject.split("\n").find((line) => line.startsWith("CN="))?.slice(3) ?? "Coyote local CA";
    this.#crlUrl = localCaCrlUrl(hostname);
    this.#record = record;
  }

  /** The CRL distribution point of the certificates this CA issues. */
  get crlUrl(): string {
    return this.#crlUrl;
  }

  /** The file of the CRL (DER). */
  get crlFile(): string {
    return join(this.#dir, LOCAL_CA_FILES.crl.file);
  }

  /**
   * Loads the CA of a folder, or returns undefined when it has none (nothing is made).
   * @param hostname the box's hostname, for the CRL distribution point URL.
   * @throws SnickersError `SNICKERS_ERR_LOCAL_CA_UNREADABLE` when the CA or its revocation record
   *   is unreadable or damaged (the files are left as they are); `SNICKERS_ERR_INVALID_INPUT` when
   *   `hostname` is not a DNS name.
   */
  static async load(dir: string, hostname: string, now = Date.now()): Promise<LocalCa | undefined> {
    const host = checkHostname(hostname);
    const read = (file: string) => readFile(join(dir, file), "utf8").catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new SnickersError("SNICKERS_ERR_LOCAL_CA_UNREADABLE", `loading the local CA in ${dir}: ${(error as Error).message}`, { cause: error });
    });
    const [keyPem, certPem] = await Promise.all([read("ca-key.pem"), read(LOCAL_CA_FILES.certificate.file)]);
    // A key without its certificate is a creation cut short (the key is written first): nothing
    // was signed with it, so a new CA may replace it. A certificate without its key is a CA that
    // people may trust: it is never replaced by another.
    if (certPem === undefined) return undefined;
    if (keyPem === undefined) throw new SnickersError("SNICKERS_ERR_LOCAL_CA_UNREADABLE", `loading the local CA in ${dir}: ca-key.pem is missing while ca.pem is there; restore the key (no new CA is made over a certificate people may trust)`);
    try {
      const ca = new LocalCa(dir, createPrivateKey(keyPem), certPem, host, await readRevocations(join(dir, "revocations.json")));
      await ca.refreshCrl(now);
      return ca;
    } catch (error) {
      throw new SnickersError("SNICKERS_ERR_LOCAL_CA_UNREADABLE", `loading the local CA in ${dir} (its key and certificate are left untouched): ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Loads the CA of a folder, making it first when there is none.
   * @param dir `proxy/ca` of the state folder.
   * @param hostname the box's hostname: it names the CA, so that people can tell boxes apart, and
   *   is where the CRL is published.
   */
  static async open(dir: string, hostname: string, now = Date.now()): Promise<LocalCa> {
    const existing = await LocalCa.load(dir, hostname, now);
    if (existing) return existing;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmodExact(dir, 0o700);
    const { privateKey, publicKey } = newKeyPair();
    const commonName = `Coyote local CA (${hostname})`.slice(0, 64);
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
    await writeFileAtomic(join(dir, "ca-key.pem"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    await writeFileAtomic(join(dir, LOCAL_CA_FILES.certificate.file), certificatePem, { mode: 0o644 });
    const ca = new LocalCa(dir, privateKey, certificatePem, checkHostname(hostname), await readRevocations(join(dir, "revocations.json")));
    await ca.refreshCrl(now);
    return ca;
  }

  /**
   * Issues a server certificate for DNS names (the first is the subject), with the CA's CRL
   * distribution point.
   * @param lifetimeDays 90 by default.
   */
  issue(dnsNames: readonly string[], lifetimeDays = 90, now = Date.now()): IssuedCertificate {
    const first = dnsNames[0];
    if (first === undefined) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", "issuing a local certificate: no DNS name given");
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
      crlUrl: this.#crlUrl,
      issuer: { commonName: this.#commonName, organization: "Coyote", privateKey: this.#privateKey, publicKey: this.#publicKey },
    });
    return { keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(), chainPem: leaf + this.certificatePem, notBefore, notAfter };
  }

  /** Whether a certificate (the first in a PEM text) was issued by this CA. */
  issued(pem: string): boolean {
    const leaf = firstCertificate(pem);
    return leaf !== undefined && leaf.checkIssued(this.#certificate) && leaf.verify(this.#publicKey);
  }

  /**
   * Revokes a certificate this CA issued (the first in a PEM text) and issues a CRL that lists it.
   * A certificate of another issuer, or one already expired, is left alone.
   * @returns whether the certificate is listed now.
   */
  revoke(pem: string, reason: RevocationReason, now = Date.now(), host?: string): Promise<boolean> {
    return this.#serially(async () => {
      const leaf = firstCertificate(pem);
      if (leaf === undefined || !this.issued(pem)) return false;
      const notAfter = leaf.validToDate.getTime();
      if (!(notAfter > now)) return false;
      const serial = leaf.serialNumber.toUpperCase();
      if (this.#record.revoked.some((entry) => entry.serial === serial)) return true;
      const live = this.#record.revoked.filter((entry) => Date.parse(entry.notAfter) > now);
      if (live.length >= MAX_REVOKED) throw new SnickersError("SNICKERS_ERR_REVOCATIONS_FULL", `revoking ${serial}: the local CA already lists ${MAX_REVOKED} unexpired revoked certificates`);
      const entry = { serial, revokedAt: new Date(now).toISOString(), notAfter: new Date(notAfter).toISOString(), reason, ...(host === undefined ? {} : { host }) };
      await this.#issueCrl({ ...this.#record, revoked: [...live, entry] }, now);
      return true;
    });
  }

  /**
   * Issues a new CRL when the current one is missing or halfway to its nextUpdate (or always, with
   * `force`). Entries of expired certificates are dropped.
   * @returns whether a new CRL was written.
   */
  refreshCrl(now = Date.now(), force = false): Promise<boolean> {
    return this.#serially(async () => {
      const thisUpdate = this.#record.crlThisUpdate === undefined ? Number.NaN : Date.parse(this.#record.crlThisUpdate);
      const due = !(now < thisUpdate + CRL_VALIDITY_MS / 2) || now < thisUpdate;
      const present = await access(this.crlFile).then(() => true, () => false);
      if (!force && !due && present) return false;
      await this.#issueCrl({ ...this.#record, revoked: this.#record.revoked.filter((entry) => Date.parse(entry.notAfter) > now) }, now);
      return true;
    });
  }

  /** When the current CRL should be replaced (halfway through its validity). */
  get crlDueAt(): number {
    const thisUpdate = this.#record.crlThisUpdate === undefined ? 0 : Date.parse(this.#record.crlThisUpdate);
    return thisUpdate + CRL_VALIDITY_MS / 2;
  }

  /**
   * Writes the CRL, then the record. A crash between the two leaves a CRL that lists more than the
   * record: the caller has not yet replaced the certificate, so it revokes it again on its next try.
   */
  async #issueCrl(next: RevocationRecord, now: number): Promise<void> {
    // Seconds since 1970 (or one more than the last): increasing even when the record was lost.
    const crlNumber = Math.max(this.#record.crlNumber + 1, Math.floor(now / 1000));
    const thisUpdate = new Date(now);
    const nextUpdate = new Date(now + CRL_VALIDITY_MS);
    const der = createCrl({
      caCertificateDer: this.#certificate.raw,
      privateKey: this.#privateKey,
      publicKey: this.#publicKey,
      number: crlNumber,
      thisUpdate,
      nextUpdate,
      revoked: next.revoked.map((entry) => ({ serial: entry.serial, revokedAt: new Date(entry.revokedAt), reason: entry.reason })),
    });
    const record: RevocationRecord = { ...next, crlNumber, crlThisUpdate: thisUpdate.toISOString(), crlNextUpdate: nextUpdate.toISOString() };
    await writeFileAtomic(this.crlFile, der, { mode: 0o644 });
    await writeRevocations(join(this.#dir, "revocations.json"), record);
    this.#record = record;
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function checkHostname(hostname: string): string {
  const host = hostname.toLowerCase();
  if (!HOSTNAME.test(host)) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", `the local CA's hostname ${JSON.stringify(hostname.slice(0, 300))} is not a DNS name (it goes into the CRL URL of every certificate)`);
  return host;
}
