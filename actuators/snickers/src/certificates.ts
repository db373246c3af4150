// snickers' certificates: which hostnames need one (plan), and getting them: from the local CA at
// once, or ordered over ACME in the background with failures recorded, backoff included, in each
// host's meta file (proxy/certs/<host>.json). The same plan and steps serve the services' hostnames
// and the box's own (box-certificate.ts).
import { access, mkdir, readFile, rm } from "node:fs/promises";
import { requeueAfter, type ActuatorContext, type Requeue } from "@coyote/actuator";
import { certificateFileName, chmodExact, parseJson, validate, writeFileAtomic, type ServerSpec } from "@coyote/spec";
import { publishAcmeChallenge, waitForTxt, withdrawAcmeChallenge } from "@coyote/actuator-dnsconf";
import { AcmeIssuer, type ChallengeType } from "./acme.ts";
import type { CaKeeper } from "./ca-keeper.ts";
import { BOX_OWNER, CertificateMeta, backoffMs, metaFile, pemFile, renewalTime } from "./certificate-meta.ts";
import type { IssuedCertificate } from "./local-ca.ts";
import { OrderRunner } from "./orders.ts";
import { askRenewal } from "./renewal.ts";
import type { SnickersPaths } from "./routes.ts";

/** What observe saw of one hostname's certificate. */
export interface ObservedCertificate {
  readonly pem: boolean;
  readonly meta: CertificateMeta | undefined;
}

/** The certificate steps of snickers' plan. */
export type CertificateStep =
  | { readonly kind: "issue"; readonly host: string; readonly why: string; readonly challenge?: ChallengeType }
  | { readonly kind: "wait"; readonly host: string; readonly until: string; readonly lastError: string }
  | { readonly kind: "await-order"; readonly host: string }
  | { readonly kind: "ask-renewal"; readonly host: string }
  | { readonly kind: "drop-certificate"; readonly host: string };

/** What {@link planCertificates} decides from. */
export interface CertificateView {
  readonly now: number;
  readonly certs: Readonly<Record<string, ObservedCertificate>>;
  /** The hostnames whose certificate order is queued or running now. */
  readonly ordering: readonly string[];
  /** The hostnames whose renewal question (ARI) is queued or running now. */
  readonly asking: readonly string[];
  /** The hosts this service's current fragment names (what it made before). */
  readonly previousHosts: readonly string[];
}

/** The hostnames of the box itself whose certificate snickers keeps with no service owning it: the mail hostname. */
export function boxHostnames(server: ServerSpec): string[] {
  return [server.hostname];
}

/**
 * Plans the certificates of one owner, a service or the box ({@link BOX_OWNER}) (pure): a
 * certificate for each wanted host that has none, is due, comes from another issuer or CA, or was
 * made for another owner (unless an order is under way, or its backoff has not ended), a renewal
 * question when the CA's advice is due, and the removal of the certificates of hosts the owner
 * no longer names. A service never removes the certificate of the box's own hostname.
 */
export function planCertificates(serviceId: string, wanted: readonly string[], observed: CertificateView, server: ServerSpec): { steps: CertificateStep[]; describe: string[] } {
  const steps: CertificateStep[] = [];
  const describe: string[] = [];
  const mode = server.certificates;
  for (const host of wanted) {
    const cert = observed.certs[host];
    const meta = cert?.meta;
    const current = meta?.certificate;
    let why: string | undefined;
    if (!cert?.pem || !current) why = "no certificate yet";
    else if (current.issuer !== mode.mode) why = `switching from ${current.issuer} to ${mode.mode}`;
    else if (mode.mode === "acme" && current.directoryUrl !== mode.directoryUrl) why = `switching to the CA at ${mode.directoryUrl}`;
    else if (observed.now >= Date.parse(current.notAfter)) why = "expired";
    else if (observed.now >= Date.parse(current.renewAfter)) why = "due for renewal";
    else if (meta.serviceId !== serviceId) why = `made for ${meta.serviceId === BOX_OWNER ? "the box" : `service ${meta.serviceId}`}`;
    if (why !== undefined) {
      const next = meta?.attempts.nextAttemptAt;
      if (observed.ordering.includes(host)) {
        steps.push({ kind: "await-order", host });
        describe.push(`wait for the certificate order of ${host}`);
      } else if (next !== undefined && Date.parse(next) > observed.now) {
        steps.push({ kind: "wait", host, until: next, lastError: meta?.attempts.lastError ?? "an earlier attempt failed" });
        describe.push(`wait until ${next} to retry the certificate of ${host}`);
      } else {
        steps.push({ kind: "issue", host, why });
        describe.push(`issue a certificate for ${host} (${why})`);
      }
    } else if (mode.mode === "acme" && current?.ariNextCheckAt !== undefined && observed.now >= Date.parse(current.ariNextCheckAt) && !observed.asking.includes(host)) {
      steps.push({ kind: "ask-renewal", host });
      describe.push(`ask the CA when to renew ${host}`);
    }
  }
  const box = boxHostnames(server);
  for (const host of observed.previousHosts) {
    if (wanted.includes(host) || (serviceId !== BOX_OWNER && box.includes(host))) continue;
    if (observed.certs[host]?.meta?.serviceId === serviceId || (observed.certs[host]?.meta === undefined && observed.certs[host]?.pem === true)) {
      steps.push({ kind: "drop-certificate", host });
      describe.push(`remove the certificate of ${host}`);
    }
  }
  return { steps, describe };
}

/** What carrying out one certificate step leaves to wait for: an order under way, or a backoff. */
export type StepOutcome = { readonly ordering: string } | { readonly waiting: Requeue } | undefined;

/** How certificates are got. */
export interface CertificateWorkOptions {
  readonly stateDir: string;
  readonly paths: SnickersPaths;
  readonly now: () => number;
  readonly localCa: CaKeeper;
  readonly orderConcurrency: number;
  readonly orderTimeoutMs: number;
  readonly acmeCallTimeoutMs: number | undefined;
}

/**
 * Gets certificates: writes those issued, keeps one ACME client per CA, and runs ACME orders and
 * renewal questions in the background (see {@link OrderRunner}), queued by apply and started by
 * commit.
 */
export class CertificateWork {
  readonly #options: CertificateWorkOptions;
  readonly #issuers = new Map<string, AcmeIssuer>();
  /** Hostnames to order over ACME at the next commit, with the service that asked and the challenge. */
  readonly #pending = new Map<string, { readonly serviceId: string; readonly challenge: ChallengeType }>();
  #runner: OrderRunner | undefined;

  constructor(options: CertificateWorkOptions) {
    this.#options = options;
  }

  #orders(): OrderRunner {
    return (this.#runner ??= new OrderRunner({ concurrency: this.#options.orderConcurrency, timeoutMs: this.#options.orderTimeoutMs }));
  }

  /** Whether an order (or, with an `ari:` prefix, a renewal question) for `key` is queued or running. */
  inFlight(key: string): boolean {
    return this.#runner?.inFlight(key) === true;
  }

  /** Starts background work under `key` (one at a time per key). */
  start(key: string, work: (signal: AbortSignal) => Promise<void>): void {
    this.#orders().start(key, work);
  }

  /** Queues an ACME order for the next commit (over HTTP-01 unless told; a wildcard's over DNS-01). */
  queue(host: string, serviceId: string, challenge: ChallengeType = "http-01"): void {
    this.#pending.set(host, { serviceId, challenge });
  }

  /** Aborts the orders under way. */
  async stop(): Promise<void> {
    const stopping = this.#runner;
    this.#runner = undefined;
    await stopping?.stop();
  }

  /** A host's meta file; a missing or broken one is no certificate: a fresh one replaces it. */
  readMeta(host: string): Promise<CertificateMeta | undefined> {
    return readFile(metaFile(this.#options.paths.certs, host), "utf8").then((text) => parseJson(CertificateMeta, text, `proxy/certs/${certificateFileName(host)}`), () => undefined);
  }

  /** Whether a host's key and chain are on disk. */
  hasPem(host: string): Promise<boolean> {
    return access(pemFile(this.#options.paths.certs, host)).then(() => true, () => false);
  }

  /** What {@link planCertificates} decides from for these hosts, but the owner's previous hosts. */
  async observe(hosts: Iterable<string>): Promise<Omit<CertificateView, "now" | "previousHosts">> {
    const all = [...new Set(hosts)];
    const certs: Record<string, ObservedCertificate> = {};
    await Promise.all(all.map(async (host) => {
      certs[host] = { pem: await this.hasPem(host), meta: await this.readMeta(host) };
    }));
    return { certs, ordering: all.filter((host) => this.inFlight(host)), asking: all.filter((host) => this.inFlight(`ari:${host}`)) };
  }

  /**
   * Issues a certificate from the local CA at once and writes it.
   * @param attempts the ACME backoff to keep in its meta (a stand-in while orders fail); none by default.
   */
  async issueLocal(host: string, owner: string, context: ActuatorContext, why: string, attempts?: CertificateMeta["attempts"]): Promise<void> {
    const ca = await this.#options.localCa.forIssuing(context.server.hostname);
    await this.write(host, owner, ca.issue([host]), "local-ca", undefined, context, attempts);
    context.logger.event("CERT_ISSUED", { host, serviceId: owner, issuer: "local-ca", why });
  }

  /**
   * Carries out one step of {@link planCertificates} for its owner: a certificate of the local CA
   * at once, an ACME order queued for {@link CertificateWork.orderPending}, a renewal question in
   * the background (the CA may stall, and this runs under the minion's apply lock), or a removal,
   * the local CA's certificate revoked first.
   */
  async apply(step: CertificateStep, owner: string, context: ActuatorContext): Promise<StepOutcome> {
    const { server } = context;
    const { paths, now, localCa } = this.#options;
    switch (step.kind) {
      case "issue":
        if (server.certificates.mode === "acme") {
          // Ordered by the next commit (a service's: after dnsconf's has made its names resolvable).
          this.queue(step.host, owner, step.challenge);
          return { ordering: step.host };
        }
        await this.issueLocal(step.host, owner, context, step.why);
        return undefined;
      case "wait":
        return { waiting: requeueAfter(Date.parse(step.until) - now(), "CertificateBackoff", `the certificate of ${step.host} failed (${step.lastError}); next attempt at ${step.until}`) };
      case "await-order":
        return { ordering: step.host };
      case "ask-renewal": {
        const issuer = await this.issuerFor(server, context);
        this.start(`ari:${step.host}`, (signal) => askRenewal({ issuer, certsDir: paths.certs, host: step.host, now, logger: context.logger, signal: AbortSignal.any([signal, context.signal]) }));
        return undefined;
      }
      case "drop-certificate":
        await localCa.revokeFile(pemFile(paths.certs, step.host), step.host, "cessationOfOperation", server.hostname, context.logger);
        await rm(pemFile(paths.certs, step.host), { force: true });
        await rm(metaFile(paths.certs, step.host), { force: true });
        return undefined;
    }
  }

  /** The ACME client for the server's CA (made once per CA settings). */
  async issuerFor(server: ServerSpec, context: ActuatorContext): Promise<AcmeIssuer> {
    const mode = server.certificates;
    if (mode.mode !== "acme") throw new Error("issuerFor: not in acme mode");
    const key = JSON.stringify(mode);
    let issuer = this.#issuers.get(key);
    if (!issuer) {
      const caBundlePem = mode.caBundleFile === undefined ? undefined : await readFile(mode.caBundleFile, "utf8");
      const callTimeoutMs = this.#options.acmeCallTimeoutMs;
      issuer = new AcmeIssuer({ directoryUrl: mode.directoryUrl, email: mode.email, ...(mode.profile ? { profile: mode.profile } : {}), ...(caBundlePem === undefined ? {} : { caBundlePem }), ...(callTimeoutMs === undefined ? {} : { callTimeoutMs }) }, this.#options.paths, context.logger);
      this.#issuers.set(key, issuer);
    }
    return issuer;
  }

  /** Writes a certificate and its meta, revoking the local CA's certificate it replaces first. */
  async write(host: string, serviceId: string, issued: IssuedCertificate, issuer: "local-ca" | "acme", directoryUrl: string | undefined, context: ActuatorContext, attempts: CertificateMeta["attempts"] = { failures: 0 }): Promise<void> {
    const { paths, localCa } = this.#options;
    await mkdir(paths.certs, { recursive: true, mode: 0o700 });
    await chmodExact(paths.certs, 0o700);
    // The certificate replaced is revoked first: were the new one written first, a crash between
    // the two would forget the old one, still valid for weeks.
    await localCa.revokeFile(pemFile(paths.certs, host), host, "superseded", context.server.hostname, context.logger);
    await writeFileAtomic(pemFile(paths.certs, host), issued.keyPem + issued.chainPem, { mode: 0o600 });
    const meta: CertificateMeta = {
      schemaVersion: 1,
      host,
      serviceId,
      certificate: {
        issuer,
        ...(directoryUrl === undefined ? {} : { directoryUrl }),
        notBefore: issued.notBefore.toISOString(),
        notAfter: issued.notAfter.toISOString(),
        renewAfter: renewalTime(issued.notBefore, issued.notAfter).toISOString(),
        // An ACME certificate asks the CA's renewal info (ARI) at the next reconcile.
        ...(issuer === "acme" ? { ariNextCheckAt: issued.notBefore.toISOString() } : {}),
      },
      attempts,
    };
    await writeFileAtomic(metaFile(paths.certs, host), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  }

  /**
   * Orders one certificate (in the background). A failure, a stalled CA included, is recorded with
   * its backoff in the host's meta file, where the service's next plan finds it.
   */
  async #orderOne(issuer: AcmeIssuer, host: string, serviceId: string, challenge: ChallengeType, context: ActuatorContext, signal: AbortSignal): Promise<void> {
    const { stateDir, paths, now } = this.#options;
    const directoryUrl = issuer.directoryUrl;
    try {
      const listen = context.server.dns.listen[0] ?? "127.0.0.1:53";
      const dns = {
        publish: (domain: string, value: string) => publishAcmeChallenge(stateDir, domain, value),
        withdraw: (domain: string, value: string) => withdrawAcmeChallenge(stateDir, domain, value),
        wait: (domain: string, value: string) => waitForTxt(listen, `_acme-challenge.${domain}`, value),
      };
      await this.write(host, serviceId, await issuer.issue(host, dns, AbortSignal.any([signal, context.signal]), challenge), "acme", directoryUrl, context);
      context.logger.event("CERT_ISSUED", { host, serviceId, issuer: "acme", directoryUrl });
    } catch (error) {
      const meta = (await this.readMeta(host)) ?? { schemaVersion: 1 as const, host, serviceId, attempts: { failures: 0 } };
      const count = meta.attempts.failures + 1;
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 1500);
      const next: CertificateMeta = { ...meta, serviceId, attempts: { failures: count, nextAttemptAt: new Date(now() + backoffMs(count)).toISOString(), lastError: message } };
      await mkdir(paths.certs, { recursive: true, mode: 0o700 });
      await writeFileAtomic(metaFile(paths.certs, host), `${JSON.stringify(validate(CertificateMeta, next, "certificate meta"), null, 2)}\n`, { mode: 0o600 });
      context.logger.event("ERROR", { err: error, host, serviceId, failures: count, nextAttemptAt: next.attempts.nextAttemptAt }, "ordering a certificate failed");
    }
  }

  /**
   * Hands the queued ACME orders to the runner; returns at once.
   * @param only these hosts alone (the box's, whose orders need not wait for dnsconf's commit as a
   *   service's do); every queued host by default.
   */
  async orderPending(context: ActuatorContext, only?: readonly string[]): Promise<void> {
    if (context.server.certificates.mode !== "acme") {
      if (only === undefined) this.#pending.clear();
      else for (const host of only) this.#pending.delete(host);
      return;
    }
    const issuer = await this.issuerFor(context.server, context);
    for (const [host, { serviceId, challenge }] of [...this.#pending]) {
      if (only !== undefined && !only.includes(host)) continue;
      this.#pending.delete(host);
      this.start(host, (signal) => this.#orderOne(issuer, host, serviceId, challenge, context, signal));
    }
  }
}
