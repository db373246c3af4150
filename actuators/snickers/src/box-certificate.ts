/**
 * The certificate of the box's own hostname, which Postfix, Dovecot and Prosody present and no
 * service owns (`proxy/certs/<certificateFileName(server.hostname)>`). No service's reconcile
 * covers it, so snickers keeps it from `start` with a loop of its own: the same plan as a
 * service's certificates ({@link planCertificates}, owner {@link BOX_OWNER}), carried out by the
 * same {@link CertificateWork} (the local CA at once, ACME orders in the background a few at a
 * time), looked at again when an order ends, a backoff ends or the certificate falls due.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ActuatorContext } from "@coyote/actuator";
import { parseJson } from "@coyote/spec";
import { BOX_OWNER, CertificateMeta, metaFile } from "./certificate-meta.ts";
import { boxHostnames, planCertificates, type CertificateWork, type ObservedCertificate } from "./certificates.ts";

/** How the box's certificate is kept. */
export interface BoxCertificateOptions {
  readonly work: CertificateWork;
  /** `proxy/certs` of the state folder. */
  readonly certsDir: string;
  readonly now: () => number;
  /** The longest wait between two looks, whatever is due; an hour by default in snickers. */
  readonly checkMs: number;
  /** How soon it looks again while an order is under way. */
  readonly orderPollMs: number;
}

/**
 * Whether a box whose CA is ACME needs a certificate of the local CA meanwhile: it has none, the
 * local CA's stand-in is due, or the CA's certificate has expired. The mail daemons do not start
 * without one, and a mail server's peers rarely check who signed it; the CA's certificate
 * replaces it (and revokes it) once an order succeeds.
 */
function needsStandIn(cert: ObservedCertificate | undefined, now: number): boolean {
  const current = cert?.meta?.certificate;
  if (cert?.pem !== true || current === undefined) return true;
  return now >= Date.parse(current.issuer === "local-ca" ? current.renewAfter : current.notAfter);
}

/** Keeps the certificate of the box's own hostname while snickers runs (from `start` to its stop). */
export class BoxCertificate {
  readonly #options: BoxCertificateOptions;
  readonly #context: ActuatorContext;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Whether the certificates of the box's former hostnames have been looked for and removed. */
  #swept = false;

  /**
   * @param context the context `start` got: its server spec is the one kept (a new one starts snickers again).
   */
  constructor(options: BoxCertificateOptions, context: ActuatorContext) {
    this.#options = options;
    this.#context = context;
  }

  /** Looks at once, then whenever something is due; returns at once. */
  start(): void {
    this.#schedule(0);
  }

  /** Stops looking and waits for the look under way (orders are the {@link CertificateWork}'s to stop). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(afterMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.check().then(
        (next) => this.#schedule(next),
        (error: unknown) => {
          this.#context.logger.event("ERROR", { err: error, hosts: boxHostnames(this.#context.server) }, "keeping the certificate of the box's own hostname failed; trying again");
          this.#schedule(Math.min(this.#options.checkMs, 60_000));
        },
      );
    }, Math.max(0, afterMs));
    this.#timer.unref();
  }

  /**
   * One look: plans the box's certificates and carries the plan out, queued ACME orders handed to
   * the runner at once (they do not wait for a commit: no service's zone is involved).
   * @returns how long to wait before the next look.
   */
  async check(): Promise<number> {
    const { work, now, checkMs, orderPollMs } = this.#options;
    const context = this.#context;
    const server = context.server;
    const wanted = boxHostnames(server);
    const former = this.#swept ? [] : await this.#formerHosts(wanted);
    const view = { now: now(), previousHosts: former, ...(await work.observe([...wanted, ...former])) };
    const plan = planCertificates(BOX_OWNER, wanted, view, server);
    // Said when something is done, not at each look while an order or a backoff runs.
    if (plan.steps.some((s) => s.kind !== "await-order" && s.kind !== "wait")) context.logger.info({ hosts: wanted, steps: plan.describe }, "keeping the certificate of the box's own hostname");
    let next = checkMs;
    for (const step of plan.steps) {
      if (this.#stopped) return next;
      const cert = view.certs[step.host];
      if (server.certificates.mode === "acme" && step.kind !== "drop-certificate" && step.kind !== "ask-renewal" && !view.ordering.includes(step.host) && needsStandIn(cert, view.now)) {
        await work.issueLocal(step.host, BOX_OWNER, context, "a stand-in until the ACME order succeeds", cert?.meta?.attempts);
      }
      const outcome = await work.apply(step, BOX_OWNER, context);
      if (outcome !== undefined) next = Math.min(next, "ordering" in outcome ? orderPollMs : outcome.waiting.afterMs);
    }
    // Its own orders only: a service's wait for the commit, after dnsconf's has made its names resolvable.
    if (!this.#stopped) await work.orderPending(context, wanted);
    this.#swept = true;
    // Looked at again when the certificate falls due, or the CA's renewal advice does; a time
    // already past (a renewal question under way) is looked at as an order is, not at once.
    for (const host of wanted) {
      const current = view.certs[host]?.meta?.certificate;
      if (current === undefined || plan.steps.some((s) => s.host === host)) continue;
      const due = [current.renewAfter, current.notAfter, ...(server.certificates.mode === "acme" && current.ariNextCheckAt !== undefined ? [current.ariNextCheckAt] : [])];
      for (const at of due) next = Math.min(next, Math.max(orderPollMs, Date.parse(at) - view.now + 1));
    }
    return next;
  }

  /**
   * The hosts of the box's certificates on disk that are no longer its hostnames (the server spec
   * named another). A meta file whose host does not match its file name is left alone.
   */
  async #formerHosts(wanted: readonly string[]): Promise<string[]> {
    const { certsDir } = this.#options;
    const names = await readdir(certsDir).catch(() => [] as string[]);
    const former: string[] = [];
    for (const name of names) {
      if (!name.endsWith(".json")) continue;
      const file = join(certsDir, name);
      const meta = await readFile(file, "utf8").then((text) => parseJson(CertificateMeta, text, `proxy/certs/${name}`), () => undefined);
      if (meta?.serviceId !== BOX_OWNER || wanted.includes(meta.host) || metaFile(certsDir, meta.host) !== file) continue;
      former.push(meta.host);
    }
    return former;
  }
}
