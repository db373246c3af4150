import { access, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { ActuatorError, DirectoryCache, FileCache, memoizeByIdentity, requeueAfter } from "@coyote/actuator";
import type { Actuator, ActuatorContext, Plan, Requeue } from "@coyote/actuator";
import { ProxyRoutes, SchemaVersion, ServiceId, WebHostname, certificateFileName, chmodExact, parseJson, staticRootFolder, validate, writeFileAtomic } from "@coyote/spec";
import { publishAcmeChallenge, waitForTxt, withdrawAcmeChallenge } from "@coyote/actuator-dnsconf";
import type { ServerSpec, ServiceSpec } from "@coyote/spec";
import { AcmeIssuer } from "./acme.ts";
import { CRL_CHECK_INTERVAL_MS, CaKeeper } from "./ca-keeper.ts";
import type { IssuedCertificate } from "./local-ca.ts";
import { CertificateMeta, backoffMs, metaFile, pemFile, renewalTime } from "./certificate-meta.ts";
import { OrderRunner } from "./orders.ts";
import { askRenewal } from "./renewal.ts";

export { CertificateMeta, backoffMs, renewalTime } from "./certificate-meta.ts";

/** The actuator's id. */
export const SNICKERS_ACTUATOR_ID = "actuator.snickers.proxy";
/** The condition it reports on services with web hosting. */
export const WEB_CONDITION = "WebReady";

type Route = ProxyRoutes["routes"][number];

/** One service's routes: `proxy/routes.d/<id>.json`, combined into `proxy/routes.json` on commit. */
const RoutesFragment = z.strictObject({
  schemaVersion: SchemaVersion,
  serviceId: ServiceId,
  hosts: z.array(WebHostname),
  routes: z.array(z.unknown()),
});
type RoutesFragment = z.infer<typeof RoutesFragment>;

/** The folders and files of snickers in a state folder. */
export function snickersPaths(stateDir: string) {
  const proxy = join(stateDir, "proxy");
  return {
    proxy,
    fragments: join(proxy, "routes.d"),
    routes: join(proxy, "routes.json"),
    certs: join(proxy, "certs"),
    ca: join(proxy, "ca"),
  };
}

/** What `observe` saw for one service. */
export interface SnickersObserved {
  /** The clock, read here so that `plan` stays pure. */
  readonly now: number;
  readonly fragmentText: string | undefined;
  /** The hosts this service's current fragment names (what it made before). */
  readonly previousHosts: readonly string[];
  /** Which service's fragment names each host. */
  readonly owners: ReadonlyMap<string, string>;
  /** The certificates of the hosts named now or before. */
  readonly certs: Readonly<Record<string, { readonly pem: boolean; readonly meta: CertificateMeta | undefined }>>;
  /** The connection limit in the combined routes file. */
  readonly routesLimit: number | undefined;
  /** The hostnames whose certificate order is queued or running now. */
  readonly ordering: readonly string[];
  /** The hostnames whose renewal question (ARI) is queued or running now. */
  readonly asking: readonly string[];
}

/** One change snickers makes. */
export type SnickersStep =
  | { readonly kind: "write-routes"; readonly text: string }
  | { readonly kind: "drop-routes" }
  | { readonly kind: "issue"; readonly host: string; readonly why: string }
  | { readonly kind: "wait"; readonly host: string; readonly until: string; readonly lastError: string }
  | { readonly kind: "await-order"; readonly host: string }
  | { readonly kind: "ask-renewal"; readonly host: string }
  | { readonly kind: "drop-certificate"; readonly host: string }
  | { readonly kind: "limits" };

/**
 * The routes a service's spec asks for: every web hostname, path `/`, to its backend. A static
 * backend's root is resolved inside the service's own site folder (`<state>/sites/<id>`).
 */
export function routesFor(spec: ServiceSpec, stateDir: string): Route[] {
  const web = spec.web;
  if (!web) return [];
  const backend = web.backend;
  const upstream: Route["upstream"] =
    backend.kind === "static" ? { kind: "static", root: staticRootFolder(stateDir, spec.id, backend.root) }
    : backend.kind === "upstream" ? { kind: "address", address: backend.address }
    : { kind: "unit", unit: spec.id };
  return web.hostnames.map((host) => ({ host, pathPrefix: "/", serviceId: spec.id, upstream, ...(web.hsts === true ? { hsts: true } : {}) }));
}

function fragmentTextOf(spec: ServiceSpec, stateDir: string): string | undefined {
  const routes = routesFor(spec, stateDir);
  if (routes.length === 0) return undefined;
  const fragment: RoutesFragment = { schemaVersion: 1, serviceId: spec.id, hosts: routes.map((r) => r.host), routes };
  return `${JSON.stringify(fragment, null, 2)}\n`;
}

/** Options of {@link createSnickersActuator}. */
export interface SnickersOptions {
  readonly stateDir: string;
  /** The clock; tests move it. */
  readonly now?: () => number;
  /** How many ACME orders run at once; 2 by default. */
  readonly orderConcurrency?: number;
  /** How long one ACME order may take before it fails; 3 minutes by default. */
  readonly orderTimeoutMs?: number;
  /** The deadline of each request to the CA; 20 s by default. */
  readonly acmeCallTimeoutMs?: number;
  /** How soon a service whose order is under way is looked at again; 2 s by default. */
  readonly orderPollMs?: number;
}

/**
 * The snickers actuator (docs/ARCHITECTURE.md, "On disk"): for each service with web hosting, its routes (a fragment
 * per service, combined into `proxy/routes.json` once per batch, with the server's connection
 * limit) and a certificate per hostname, from the local CA or over ACME, renewed two thirds into
 * its life (or inside the window the CA's ARI suggests). A hostname another service already
 * routes is refused; certificates are issued only for hostnames a spec names. A certificate of the
 * local CA that it replaces or removes before it expires is revoked first (ca-keeper.ts).
 */
export function createSnickersActuator(options: SnickersOptions): Actuator<SnickersObserved, SnickersStep> {
  const paths = snickersPaths(options.stateDir);
  const now = options.now ?? Date.now;
  // Each fragment with its text, so that an observe compares the text without reading it again.
  const fragments = new DirectoryCache<{ fragment: RoutesFragment; text: string }>(paths.fragments, (name) => name.endsWith(".json"), (name, text) => {
    try {
      return { fragment: parseJson(RoutesFragment, text, join("proxy", "routes.d", name)), text };
    } catch {
      return undefined;
    }
  });
  // Who routes each hostname, derived once per state of the fragment folder, not once per service.
  const ownersOf = memoizeByIdentity((all: ReadonlyMap<string, { fragment: RoutesFragment }>) => {
    const owners = new Map<string, string>();
    for (const { fragment } of all.values()) for (const host of fragment.hosts) if (!owners.has(host)) owners.set(host, fragment.serviceId);
    return owners;
  });
  const combined = new FileCache<ProxyRoutes>(paths.routes, (text) => parseJson(ProxyRoutes, text, "proxy/routes.json"));
  const localCa = new CaKeeper(paths.ca, now);
  const issuers = new Map<string, AcmeIssuer>();
  /** Hostnames to order over ACME at the next commit, with the service that asked. */
  const pending = new Map<string, string>();
  const orderPollMs = options.orderPollMs ?? 2000;
  let runner: OrderRunner | undefined;
  const orders = () => (runner ??= new OrderRunner({ concurrency: options.orderConcurrency ?? 2, timeoutMs: options.orderTimeoutMs ?? 180_000 }));

  // A missing or broken meta file is treated as no certificate: a fresh one is issued and replaces it.
  const readMeta = (host: string): Promise<CertificateMeta | undefined> =>
    readFile(metaFile(paths.certs, host), "utf8").then((text) => parseJson(CertificateMeta, text, `proxy/certs/${certificateFileName(host)}`), () => undefined);
  const exists = (file: string) => access(file).then(() => true, () => false);

  const issuerFor = async (server: ServerSpec, context: ActuatorContext): Promise<AcmeIssuer> => {
    const mode = server.certificates;
    if (mode.mode !== "acme") throw new Error("issuerFor: not in acme mode");
    const key = JSON.stringify(mode);
    let issuer = issuers.get(key);
    if (!issuer) {
      const caBundlePem = mode.caBundleFile === undefined ? undefined : await readFile(mode.caBundleFile, "utf8");
      const callTimeoutMs = options.acmeCallTimeoutMs;
      issuer = new AcmeIssuer({ directoryUrl: mode.directoryUrl, email: mode.email, ...(mode.profile ? { profile: mode.profile } : {}), ...(caBundlePem === undefined ? {} : { caBundlePem }), ...(callTimeoutMs === undefined ? {} : { callTimeoutMs }) }, paths.proxy, context.logger);
      issuers.set(key, issuer);
    }
    return issuer;
  };

  const writeCertificate = async (host: string, serviceId: string, issued: IssuedCertificate, issuer: "local-ca" | "acme", directoryUrl: string | undefined, context: ActuatorContext) => {
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
      attempts: { failures: 0 },
    };
    await writeFileAtomic(metaFile(paths.certs, host), `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600 });
  };

  /**
   * Orders one certificate (in the background, see {@link OrderRunner}). A failure, a stalled CA
   * included, is recorded with its backoff in the host's meta file, where the service's next
   * plan finds it.
   */
  const orderOne = async (issuer: AcmeIssuer, host: string, serviceId: string, context: ActuatorContext, signal: AbortSignal) => {
    const directoryUrl = issuer.directoryUrl;
    try {
      const listen = context.server.dns.listen[0] ?? "127.0.0.1:53";
      const dns = {
        publish: (domain: string, value: string) => publishAcmeChallenge(options.stateDir, domain, value),
        withdraw: (domain: string, value: string) => withdrawAcmeChallenge(options.stateDir, domain, value),
        wait: (domain: string, value: string) => waitForTxt(listen, `_acme-challenge.${domain}`, value),
      };
      await writeCertificate(host, serviceId, await issuer.issue(host, dns, AbortSignal.any([signal, context.signal])), "acme", directoryUrl, context);
      context.logger.event("CERT_ISSUED", { host, serviceId, issuer: "acme", directoryUrl });
    } catch (error) {
      const meta = (await readMeta(host)) ?? { schemaVersion: 1 as const, host, serviceId, attempts: { failures: 0 } };
      const count = meta.attempts.failures + 1;
      const message = (error instanceof Error ? error.message : String(error)).slice(0, 1500);
      const next: CertificateMeta = { ...meta, serviceId, attempts: { failures: count, nextAttemptAt: new Date(now() + backoffMs(count)).toISOString(), lastError: message } };
      await mkdir(paths.certs, { recursive: true, mode: 0o700 });
      await writeFileAtomic(metaFile(paths.certs, host), `${JSON.stringify(validate(CertificateMeta, next, "certificate meta"), null, 2)}\n`, { mode: 0o600 });
      context.logger.event("ERROR", { err: error, host, serviceId, failures: count, nextAttemptAt: next.attempts.nextAttemptAt }, "ordering a certificate failed");
    }
  };

  /** Hands the pending ACME orders to the runner; returns at once. */
  const orderPending = async (context: ActuatorContext) => {
    if (context.server.certificates.mode !== "acme") {
      pending.clear();
      return;
    }
    const issuer = await issuerFor(context.server, context);
    for (const [host, serviceId] of [...pending]) {
      pending.delete(host);
      orders().start(host, (signal) => orderOne(issuer, host, serviceId, context, signal));
    }
  };

  return {
    id: SNICKERS_ACTUATOR_ID,
    condition: WEB_CONDITION,
    appliesTo: (spec) => spec.web !== undefined,

    async observe(target) {
      const all = await fragments.read();
      const entry = all.get(`${target.id}.json`);
      const own = entry?.fragment;
      const fragmentText = entry?.text;
      const owners = ownersOf(all);
      const hosts = new Set([...(own?.hosts ?? []), ...(target.spec?.web?.hostnames ?? [])]);
      const certs: Record<string, { pem: boolean; meta: CertificateMeta | undefined }> = {};
      await Promise.all([...hosts].map(async (host) => {
        certs[host] = { pem: await exists(pemFile(paths.certs, host)), meta: await readMeta(host) };
      }));
      const routesLimit = (await combined.read().catch(() => undefined))?.limits?.maxConnections;
      const ordering = [...hosts].filter((host) => runner?.inFlight(host) === true);
      const asking = [...hosts].filter((host) => runner?.inFlight(`ari:${host}`) === true);
      return { now: now(), fragmentText, previousHosts: own?.hosts ?? [], owners, certs, routesLimit, ordering, asking };
    },

    plan(target, observed, server): Plan<SnickersStep> {
      const steps: SnickersStep[] = [];
      const describe: string[] = [];
      const spec = target.spec;
      const wanted = spec ? routesFor(spec, options.stateDir).map((r) => r.host) : [];
      for (const host of wanted) {
        const owner = observed.owners.get(host);
        if (owner !== undefined && owner !== target.id) {
          throw new ActuatorError("HostnameTaken", `web hostname ${host} is already served by service ${owner}`, { terminal: true });
        }
      }
      const text = spec ? fragmentTextOf(spec, options.stateDir) : undefined;
      if (text !== observed.fragmentText) {
        if (text === undefined) {
          steps.push({ kind: "drop-routes" });
          describe.push("remove the service's routes");
        } else {
          steps.push({ kind: "write-routes", text });
          describe.push(`route ${wanted.join(", ")}`);
        }
      }
      const mode = server.certificates;
      const wildcard = wanted.find((host) => host.startsWith("*."));
      if (wildcard !== undefined && mode.mode === "acme" && server.dns.backend !== "builtin") {
        throw new ActuatorError("WildcardNeedsBuiltinDns", `the wildcard ${wildcard} needs an ACME DNS-01 challenge, which Coyote publishes through its built-in DNS server; this server uses ${server.dns.backend}`, { terminal: true });
      }
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
      for (const host of observed.previousHosts) {
        if (wanted.includes(host)) continue;
        if (observed.certs[host]?.meta?.serviceId === target.id || (observed.certs[host]?.meta === undefined && observed.certs[host]?.pem === true)) {
          steps.push({ kind: "drop-certificate", host });
          describe.push(`remove the certificate of ${host}`);
        }
      }
      if (spec?.web && observed.routesLimit !== server.limits.maxConnections) {
        steps.push({ kind: "limits" });
        describe.push(`set the proxy's connection limit to ${server.limits.maxConnections}`);
      }
      return { steps, describe };
    },

    async apply(plan, target, context) {
      const server = context.server;
      const ordering: string[] = [];
      const waiting: Requeue[] = [];
      for (const step of plan.steps) {
        switch (step.kind) {
          case "write-routes":
            await mkdir(paths.fragments, { recursive: true });
            await writeFileAtomic(join(paths.fragments, `${target.id}.json`), step.text);
            break;
          case "drop-routes":
            await rm(join(paths.fragments, `${target.id}.json`), { force: true });
            break;
          case "issue": {
            const mode = server.certificates;
            if (mode.mode === "acme") {
              // Ordered in commit, after dnsconf (earlier in the bundled order) has made the
              // service's names resolvable: the CA validates through our own DNS.
              pending.set(step.host, target.id);
              ordering.push(step.host);
              break;
            }
            const ca = await localCa.forIssuing(server.hostname);
            await writeCertificate(step.host, target.id, ca.issue([step.host]), "local-ca", undefined, context);
            context.logger.event("CERT_ISSUED", { host: step.host, serviceId: target.id, issuer: "local-ca", why: step.why });
            break;
          }
          case "wait":
            waiting.push(requeueAfter(Date.parse(step.until) - now(), "CertificateBackoff", `the certificate of ${step.host} failed (${step.lastError}); next attempt at ${step.until}`));
            break;
          case "await-order":
            ordering.push(step.host);
            break;
          case "ask-renewal": {
            // In the background, like orders: the CA may stall, and this runs under the apply lock.
            const issuer = await issuerFor(server, context);
            const key = `ari:${step.host}`;
            orders().start(key, (signal) => askRenewal({ issuer, certsDir: paths.certs, host: step.host, now, logger: context.logger, signal: AbortSignal.any([signal, context.signal]) }));
            break;
          }
          case "drop-certificate":
            await localCa.revokeFile(pemFile(paths.certs, step.host), step.host, "cessationOfOperation", server.hostname, context.logger);
            await rm(pemFile(paths.certs, step.host), { force: true });
            await rm(metaFile(paths.certs, step.host), { force: true });
            break;
          case "limits":
            break;
        }
      }
      // Not ready until the order (started by the commit, run in the background) ends; the
      // minion looks again shortly, or when the backoff ends.
      if (ordering.length > 0 && server.certificates.mode === "acme") waiting.push(requeueAfter(orderPollMs, "CertificatePending", `ordering certificates for ${ordering.join(", ")} from ${server.certificates.directoryUrl}`));
      const soonest = Math.min(...waiting.map((w) => w.afterMs));
      const first = waiting[0];
      return first === undefined ? undefined : requeueAfter(soonest, first.reason, waiting.map((w) => w.message).join("; "));
    },

    // Orders run in the background; stopping the minion (or rebuilding the actuators for a new
    // server spec) aborts them.
    // The local CA's CRL is reissued halfway through its validity, converged or not.
    start(context) {
      const refresh = () => localCa.refresh(context.server.hostname, context.logger).catch((error: unknown) => context.logger.event("ERROR", { err: error }, "reissuing the local CA's CRL"));
      void refresh();
      const timer = setInterval(() => void refresh(), CRL_CHECK_INTERVAL_MS);
      timer.unref();
      return Promise.resolve({
        stop: async () => {
          clearInterval(timer);
          const stopping = runner;
          runner = undefined;
          await stopping?.stop();
        },
      });
    },

    async commit(context) {
      const all = await fragments.read();
      const routes: Route[] = [];
      const seen = new Map<string, string>();
      for (const [name, { fragment }] of all) {
        for (const raw of fragment.routes) {
          const route = raw as Route;
          const key = `${route.host}${route.pathPrefix}`;
          const owner = seen.get(key);
          if (owner !== undefined) {
            context.logger.event("ERROR", { host: route.host, serviceId: fragment.serviceId, owner, fragment: name }, "two services route the same hostname; the first keeps it");
            continue;
          }
          seen.set(key, fragment.serviceId);
          routes.push(route);
        }
      }
      const doc = validate(ProxyRoutes, { schemaVersion: 1, generatedAt: new Date(now()).toISOString(), limits: { maxConnections: context.server.limits.maxConnections }, routes }, "proxy/routes.json");
      const previous = await combined.read().catch(() => undefined);
      if (!previous || JSON.stringify(previous.routes) !== JSON.stringify(doc.routes) || JSON.stringify(previous.limits) !== JSON.stringify(doc.limits)) {
        await mkdir(paths.proxy, { recursive: true });
        await writeFileAtomic(paths.routes, `${JSON.stringify(doc)}\n`);
        context.logger.event("CONFIG_RELOADED", { what: "proxy routes", routes: routes.length });
      }
      await orderPending(context);
    },
  } satisfies Actuator<SnickersObserved, SnickersStep>;
}
