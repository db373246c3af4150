import { createHash, X509Certificate } from "node:crypto";
import { Agent as HttpsAgent, get as httpsGet } from "node:https";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import * as acme from "acme-client";
import forge from "node-forge";
import type { CoyoteLogger } from "@coyote/log";
import { chmodExact, writeFileAtomic, type ProxyRuntimePaths } from "@coyote/spec";
import { ACME_CALL_TIMEOUT_MS, AcmeTransportError, MAX_RESPONSE_BYTES, callScope, installAcmeTransport, type CallScope } from "./acme-http.ts";
import { SnickersError } from "./errors.ts";
import { newKeyPair, type IssuedCertificate } from "./local-ca.ts";

/** Where the ACME server is and who the account is. */
export interface AcmeSettings {
  readonly directoryUrl: string;
  readonly email: string;
  /** A certificate profile (`classic`, `tlsserver`, `shortlived`), sent when the CA offers it. */
  readonly profile?: string;
  /** Extra CA certificates to trust for the ACME server itself (a test CA such as Pebble's). */
  readonly caBundlePem?: string;
  /** The deadline of each request to the CA, in milliseconds; 20 s by default. */
  readonly callTimeoutMs?: number;
}

/** Rejects with the signal's reason once it aborts; never resolves. */
function whenAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    const fail = () => {
      const reason: unknown = signal.reason;
      reject(reason instanceof Error ? reason : new Error("aborted"));
    };
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
}

/** The ACME challenges snickers answers: HTTP-01 through the proxy, DNS-01 through the built-in DNS server. */
export type ChallengeType = "http-01" | "dns-01";

/** Where DNS-01 challenges are published (the built-in DNS server, through dnsconf). */
export interface DnsChallenges {
  /** Serves `value` as a TXT record at `_acme-challenge.<domain>`. */
  publish(domain: string, value: string): Promise<void>;
  /** Stops serving it. */
  withdraw(domain: string, value: string): Promise<void>;
  /** Resolves once the DNS server really answers it. */
  wait(domain: string, value: string): Promise<void>;
}

/** ARI's advice (RFC 9773): when to renew, and when to ask again. */
export interface RenewalAdvice {
  readonly windowStart: Date;
  readonly windowEnd: Date;
  readonly nextCheckAt: Date;
}

interface Directory {
  readonly renewalInfo?: string;
  readonly meta?: { readonly profiles?: Record<string, string> };
}

const b64u = (buffer: Buffer) => buffer.toString("base64url");

/**
 * The ARI certificate id of a certificate (RFC 9773 §4.1): the authority key identifier and the
 * serial number's DER bytes, each base64url, joined by a dot.
 */
export function ariCertId(certPem: string): string {
  const cert = new X509Certificate(certPem);
  const der = forge.asn1.fromDer(Buffer.from(cert.raw).toString("binary"));
  const tbs = (der.value as forge.asn1.Asn1[])[0];
  const parts = (tbs?.value ?? []) as forge.asn1.Asn1[];
  const extensions = parts.find((p) => p.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && p.type === forge.asn1.Type.BITSTRING) // [3] extensions;
  const list = ((extensions?.value as forge.asn1.Asn1[] | undefined)?.[0]?.value ?? []) as forge.asn1.Asn1[];
  let keyId: Buffer | undefined;
  for (const ext of list) {
    const fields = ext.value as forge.asn1.Asn1[];
    const oid = fields[0] ? forge.asn1.derToOid(fields[0].value as string) : "";
    if (oid !== "2.5.29.35") continue;
    const octets = fields.at(-1)?.value as string;
    const aki = forge.asn1.fromDer(octets).value as forge.asn1.Asn1[];
    const id = aki.find((item) => item.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && item.type === forge.asn1.Type.NONE) // [0] keyIdentifier;
    if (id) keyId = Buffer.from(id.value as string, "binary");
  }
  if (!keyId) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", "computing the ARI id: the certificate has no authority key identifier");
  let serial = Buffer.from(cert.serialNumber.length % 2 === 0 ? cert.serialNumber : `0${cert.serialNumber}`, "hex");
  if ((serial[0] ?? 0) & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${b64u(keyId)}.${b64u(serial)}`;
}

/** Where an issuer keeps its account keys and the HTTP-01 answers snitch-proxy serves. */
export type AcmeFolders = Pick<ProxyRuntimePaths, "acme" | "challenges">;

/**
 * Obtains certificates from an ACME CA (Let's Encrypt, or Pebble in tests) with `acme-client`,
 * answering HTTP-01 challenges through files in `proxy/challenges/` that snitch-proxy serves on
 * port 80. The account key is made once per directory and kept (0600) under `proxy/acme/`.
 * acme-client's own retries are capped: the minion retries with backoff kept on disk, because
 * Let's Encrypt allows only 5 failed authorizations per name per hour.
 */
export class AcmeIssuer {
  readonly #settings: AcmeSettings;
  readonly #folders: AcmeFolders;
  readonly #logger: CoyoteLogger;
  #client: acme.Client | undefined;
  #directory: Directory | undefined;

  /**
   * Makes the issuer; nothing is contacted until a certificate is asked for.
   * @param folders the account keys' folder and the HTTP-01 answers' (`proxy/acme`, `proxy/challenges`).
   */
  constructor(settings: AcmeSettings, folders: AcmeFolders, logger: CoyoteLogger) {
    this.#settings = settings;
    this.#folders = folders;
    this.#logger = logger;
  }

  get #callTimeoutMs(): number {
    return this.#settings.callTimeoutMs ?? ACME_CALL_TIMEOUT_MS;
  }

  /** The directory this issuer uses. */
  get directoryUrl(): string {
    return this.#settings.directoryUrl;
  }

  #trust(): void {
    installAcmeTransport();
    if (this.#settings.caBundlePem !== undefined) {
      // acme-client talks through its own axios instance; trusting the test CA there (and not by
      // turning verification off) keeps the tests honest about TLS.
      acme.axios.defaults.httpsAgent = new HttpsAgent({ ca: this.#settings.caBundlePem, keepAlive: true });
    }
    // acme-client retries 5 times, up to 25 s apart; the minion retries with backoff on disk.
    const settings = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
    if (settings) {
      settings.retryMaxAttempts = 2;
      settings.retryDefaultDelay = 1;
    }
  }

  async #account(): Promise<acme.Client> {
    if (this.#client) return this.#client;
    this.#trust();
    const dir = this.#folders.acme;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmodExact(dir, 0o700);
    const keyFile = join(dir, `account-${createHash("sha256").update(this.#settings.directoryUrl).digest("hex").slice(0, 16)}.pem`);
    let accountKey: string;
    try {
      accountKey = await readFile(keyFile, "utf8");
    } catch {
      accountKey = newKeyPair().privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      await writeFileAtomic(keyFile, accountKey, { mode: 0o600 });
    }
    const client = new acme.Client({ directoryUrl: this.#settings.directoryUrl, accountKey, backoffAttempts: 6, backoffMin: 500, backoffMax: 5000 });
    await client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${this.#settings.email}`] });
    this.#client = client;
    return client;
  }

  /**
   * Reads the directory with a plain request, not through acme-client's axios, whose retry
   * interceptor hides the cause of a connection failure; a CA that cannot be reached is thus
   * reported as such before anything else is tried.
   */
  async #readDirectory(signal: AbortSignal): Promise<Directory> {
    if (this.#directory) return this.#directory;
    this.#trust();
    const url = this.#settings.directoryUrl;
    const timeoutMs = this.#callTimeoutMs;
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    const text = await new Promise<string>((resolve, reject) => {
      const req = httpsGet(url, { ...(this.#settings.caBundlePem === undefined ? {} : { ca: this.#settings.caBundlePem }), timeout: timeoutMs, signal: deadline }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new AcmeTransportError(`the directory is larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on("end", () => {
          if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString("utf8"));
          else reject(new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", `the directory answered ${String(res.statusCode)}`));
        });
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new AcmeTransportError(`the directory did not answer within ${seconds(timeoutMs)}`)));
      req.on("error", (error) => reject(deadline.aborted && !signal.aborted ? new AcmeTransportError(`the directory did not answer within ${seconds(timeoutMs)}`, { cause: error }) : error));
    });
    let directory: Directory;
    try {
      directory = JSON.parse(text) as Directory;
    } catch {
      throw new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", "the directory is not JSON");
    }
    this.#directory = directory;
    return directory;
  }

  /**
   * Obtains a certificate for one hostname: over HTTP-01, or over DNS-01 through `dns` for a
   * wildcard (`*.example.org`), which HTTP-01 cannot prove, or when asked (a name that leads to
   * no web server of the box, in a zone the box serves).
   * Every request to the CA has its own deadline, and the whole order ends when `signal` aborts.
   * @param challenge the challenge to answer; DNS-01 for a wildcard whatever is asked.
   * @throws SnickersError `SNICKERS_ERR_ORDER_FAILED`, naming the hostname and the CA's problem
   *   document, when the order fails; its cause is the failure itself.
   */
  async issue(hostname: string, dns?: DnsChallenges, signal: AbortSignal = new AbortController().signal, challenge: ChallengeType = "http-01"): Promise<IssuedCertificate> {
    try {
      const scope: CallScope = { signal, callTimeoutMs: this.#callTimeoutMs };
      const type = hostname.startsWith("*.") ? "dns-01" : challenge;
      // The race ends the order at its deadline even in a step that is not a request to the CA.
      return await Promise.race([callScope.run(scope, () => this.#issue(hostname, dns, signal, type)), whenAborted(signal)]);
    } catch (error) {
      throw new SnickersError("SNICKERS_ERR_ORDER_FAILED", `ordering a certificate for ${hostname} from ${this.#settings.directoryUrl}: ${this.#describe(error, signal)}`, { cause: error });
    }
  }

  /** Says what went wrong, naming the deadline when one passed. */
  #describe(error: unknown, signal: AbortSignal): string {
    if (signal.aborted && error === signal.reason) {
      return error instanceof Error && error.name === "TimeoutError" ? "the order did not finish before its deadline" : "the order was cancelled";
    }
    if (error instanceof AcmeTransportError) return error.message;
    return describe(error);
  }

  async #issue(hostname: string, dns: DnsChallenges | undefined, signal: AbortSignal, type: ChallengeType): Promise<IssuedCertificate> {
    const directory = await this.#readDirectory(signal);
    const client = await this.#account();
    const profile = this.#settings.profile;
    const offersProfile = profile !== undefined && directory.meta?.profiles?.[profile] !== undefined;
    if (profile !== undefined && !offersProfile) this.#logger.warn({ profile, directoryUrl: this.#settings.directoryUrl }, "the CA does not offer this certificate profile; ordering its default");
    // `profile` is newer than acme-client's types; the request body takes it as is.
    const request = { identifiers: [{ type: "dns", value: hostname }], ...(offersProfile ? { profile } : {}) } as Parameters<acme.Client["createOrder"]>[0];
    const order = await client.createOrder(request);
    const challengesDir = this.#folders.challenges;
    await mkdir(challengesDir, { recursive: true });
    const cleanups: (() => Promise<void>)[] = [];
    const wildcard = hostname.startsWith("*.");
    if (type === "dns-01" && dns === undefined) throw new SnickersError("SNICKERS_ERR_INVALID_INPUT", `${wildcard ? "a wildcard certificate needs" : "this order asks for"} a DNS-01 challenge, and no DNS server was given to publish it`);
    try {
      for (const authz of await client.getAuthorizations(order)) {
        if (authz.status === "valid") continue;
        const challenge = authz.challenges.find((c) => c.type === type);
        if (!challenge) throw new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", `the CA offers no ${type} challenge`);
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        if (type === "dns-01" && dns) {
          // For dns-01, acme-client gives the TXT value itself (the key authorization's digest).
          const domain = authz.identifier.value;
          await dns.publish(domain, keyAuthorization);
          cleanups.push(() => dns.withdraw(domain, keyAuthorization));
          await dns.wait(domain, keyAuthorization);
        } else {
          if (!/^[A-Za-z0-9_-]{1,256}$/.test(challenge.token)) throw new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", "the CA sent a malformed token");
          await writeFileAtomic(join(challengesDir, challenge.token), keyAuthorization, { mode: 0o644, durable: false });
          cleanups.push(() => rm(join(challengesDir, challenge.token), { force: true }));
        }
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      }
      const { privateKey } = newKeyPair();
      const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const [, csr] = await acme.crypto.createCsr({ commonName: hostname, altNames: [hostname] }, keyPem);
      const finalized = await client.finalizeOrder(order, csr);
      const chainPem = await client.getCertificate(finalized);
      const leaf = new X509Certificate(chainPem);
      // A wildcard certificate covers any one label below it; check with one.
      if (!leaf.checkHost(wildcard ? `x${hostname.slice(1)}` : hostname)) throw new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", `the CA returned a certificate for ${leaf.subjectAltName ?? leaf.subject}`);
      return { keyPem, chainPem, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
    } finally {
      // One after another: withdrawals rewrite one shared file.
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    }
  }

  /**
   * Asks the CA when to renew a certificate (ARI, RFC 9773). Resolves undefined when the CA does
   * not offer ARI; Let's Encrypt exempts renewals made inside the window from its rate limits.
   */
  async renewalAdvice(chainPem: string, now = new Date(), abort?: AbortSignal): Promise<RenewalAdvice | undefined> {
    this.#trust();
    const signal = abort === undefined ? AbortSignal.timeout(this.#callTimeoutMs) : AbortSignal.any([abort, AbortSignal.timeout(this.#callTimeoutMs)]);
    const directory = await this.#readDirectory(signal);
    if (directory.renewalInfo === undefined) return undefined;
    const url = `${directory.renewalInfo.replace(/\/$/, "")}/${ariCertId(chainPem)}`;
    const response = await callScope.run({ signal, callTimeoutMs: this.#callTimeoutMs }, () => acme.axios.get<{ suggestedWindow?: { start?: string; end?: string } }>(url));
    const start = new Date(response.data.suggestedWindow?.start ?? "");
    const end = new Date(response.data.suggestedWindow?.end ?? "");
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw new SnickersError("SNICKERS_ERR_CA_ANSWER_INVALID", "reading renewal info: the CA's suggested window is malformed");
    const retryAfter = Number(response.headers["retry-after"]);
    // RFC 9773 §4.3: poll again after Retry-After, kept between an hour and a day.
    const seconds = Number.isFinite(retryAfter) ? Math.min(Math.max(retryAfter, 3600), 86400) : 21600;
    return { windowStart: start, windowEnd: end, nextCheckAt: new Date(now.getTime() + seconds * 1000) };
  }
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
