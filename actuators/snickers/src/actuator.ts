// The snickers actuator: observe, plan, apply and commit for proxy routes and certificates. The
// routes' files are in routes.ts, the certificates' planning and issuing in certificates.ts.
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { ActuatorError, DirectoryCache, FileCache, memoizeByIdentity, requeueAfter } from "@coyote/actuator";
import type { Actuator, ActuatorContext, Plan, Requeue } from "@coyote/actuator";
import { ProxyRoutes, parseJson, validate, writeFileAtomic } from "@coyote/spec";
import { CRL_CHECK_INTERVAL_MS, CaKeeper } from "./ca-keeper.ts";
import { BoxCertificate } from "./box-certificate.ts";
import { CertificateWork, boxHostnames, planCertificates, type CertificateStep, type ObservedCertificate } from "./certificates.ts";
import { checkClaims, claimsFragmentText, claimsOf, describeClaims, dnsChallengeNames } from "./claims.ts";
import { RoutesFragment, carriesSettings, combineRoutes, hostOwners, proxySettingsFor, snickersPaths } from "./routes.ts";

export { BOX_OWNER, CertificateMeta, backoffMs, renewalTime } from "./certificate-meta.ts";
export { boxHostnames } from "./certificates.ts";
export { routesFor, snickersPaths } from "./routes.ts";

/** The actuator's id. */
export const SNICKERS_ACTUATOR_ID = "actuator.snickers.proxy";
/** The condition it reports on services with web hosting. */
export const WEB_CONDITION = "WebReady";

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
  readonly certs: Readonly<Record<string, ObservedCertificate>>;
  /** The combined routes file as it is (its settings are compared with the server spec's). */
  readonly routesFile: ProxyRoutes | undefined;
  /** The hostnames whose certificate order is queued or running now. */
  readonly ordering: readonly string[];
  /** The hostnames whose renewal question (ARI) is queued or running now. */
  readonly asking: readonly string[];
}

/** One change snickers makes. */
export type SnickersStep =
  | { readonly kind: "write-routes"; readonly text: string }
  | { readonly kind: "drop-routes" }
  | CertificateStep
  | { readonly kind: "settings" };

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
  /** The longest wait between two looks at the box's own certificate; an hour by default. */
  readonly boxCheckMs?: number;
}

/**
 * The snickers actuator (docs/ARCHITECTURE.md, "On disk"): for each service with web hosting, its routes (a fragment
 * per service, combined into `proxy/routes.json` once per batch, with the server spec's settings for
 * the proxy: its connection limit, its ports and its bind address, and the box's own route, its
 * hostname to the panel) and a certificate per hostname, from the local CA or over ACME, renewed two thirds into
 * its life (or inside the window the CA's ARI suggests). Each XMPP domain of a service gets a
 * certificate the same way, for Prosody, with no route (claims.ts). A name another service already
 * claims is refused; certificates are issued only for names a spec names. A certificate of the
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
  const ownersOf = memoizeByIdentity(hostOwners);
  const combined = new FileCache<ProxyRoutes>(paths.routes, (text) => parseJson(ProxyRoutes, text, "proxy/routes.json"));
  const localCa = new CaKeeper(paths.ca, now);
  const work = new CertificateWork({
    stateDir: options.stateDir,
    paths,
    now,
    localCa,
    orderConcurrency: options.orderConcurrency ?? 2,
    orderTimeoutMs: options.orderTimeoutMs ?? 180_000,
    acmeCallTimeoutMs: options.acmeCallTimeoutMs,
  });
  const orderPollMs = options.orderPollMs ?? 2000;
  // Writes of the combined file one at a time (a commit, and a start for a new server spec), each
  // reading the fragments when its turn comes, so the last one written has the latest of them.
  let writing: Promise<void> = Promise.resolve();

  /**
   * Combines every fragment with the server spec's proxy settings into `proxy/routes.json`, when
   * that changes the file (or, with `onlySettings`, only when its settings lag behind).
   */
  const writeCombined = (context: Pick<ActuatorContext, "server" | "logger">, onlySettings = false): Promise<void> => {
    const next = writing.then(async () => {
      const settings = proxySettingsFor(context.server);
      const previous = await combined.read().catch(() => undefined);
      if (onlySettings && carriesSettings(previous, settings)) return;
      const routes = combineRoutes(await fragments.read(), context.logger, settings.box);
      const doc = validate(ProxyRoutes, { schemaVersion: 1, generatedAt: new Date(now()).toISOString(), limits: settings.limits, listen: settings.listen, routes }, "proxy/routes.json");
      if (previous && carriesSettings(previous, settings) && JSON.stringify(previous.routes) === JSON.stringify(doc.routes)) return;
      await mkdir(paths.root, { recursive: true });
      await writeFileAtomic(paths.routes, `${JSON.stringify(doc)}\n`);
      context.logger.event("CONFIG_RELOADED", { what: "proxy routes", routes: routes.length, listen: `${settings.listen.host} ${String(settings.listen.https)}/${String(settings.listen.http)}` });
    });
    writing = next.catch(() => undefined);
    return next;
  };

  return {
    id: SNICKERS_ACTUATOR_ID,
    condition: WEB_CONDITION,
    // A service with mail has routes too: mail apps' autoconfig names, to the panel; one with
    // XMPP has a certificate for each of its domains, which Prosody presents.
    appliesTo: (spec) => spec.web !== undefined || spec.mail !== undefined || spec.xmpp !== undefined,

    async observe(target, context) {
      const all = await fragments.read();
      const entry = all.get(`${target.id}.json`);
      const own = entry?.fragment;
      const fragmentText = entry?.text;
      const owners = ownersOf(all);
      const hosts = new Set([...(own?.hosts ?? []), ...(target.spec ? claimsOf(target.spec, context.server).map((claim) => claim.host) : [])]);
      const { certs, ordering, asking } = await work.observe(hosts);
      const routesFile = await combined.read().catch(() => undefined);
      return { now: now(), fragmentText, previousHosts: own?.hosts ?? [], owners, certs, routesFile, ordering, asking };
    },

    plan(target, observed, server): Plan<SnickersStep> {
      const steps: SnickersStep[] = [];
      const describe: string[] = [];
      const spec = target.spec;
      const claims = spec ? claimsOf(spec, server) : [];
      const wanted = claims.map((claim) => claim.host);
      // Another service's names, and the box's own hostname (the panel's, with the certificate the
      // mail and XMPP servers present, kept by snickers itself: box-certificate.ts), are refused.
      checkClaims(target.id, claims, observed.owners, server);
      const box = boxHostnames(server);
      const text = spec ? claimsFragmentText(spec, options.stateDir, server) : undefined;
      if (text !== observed.fragmentText) {
        if (text === undefined) {
          steps.push({ kind: "drop-routes" });
          describe.push("remove the service's routes");
        } else {
          steps.push({ kind: "write-routes", text });
          describe.push(describeClaims(claims));
        }
      }
      const wildcard = wanted.find((host) => host.startsWith("*."));
      if (wildcard !== undefined && server.certificates.mode === "acme" && server.dns.backend !== "builtin") {
        throw new ActuatorError("WildcardNeedsBuiltinDns", `the wildcard ${wildcard} needs an ACME DNS-01 challenge, which Coyote publishes through its built-in DNS server; this server uses ${server.dns.backend}`, { terminal: true });
      }
      const certificates = planCertificates(target.id, wanted.filter((host) => !box.includes(host)), observed, server);
      const overDns = spec ? dnsChallengeNames(spec, claims, server) : new Set<string>();
      steps.push(...certificates.steps.map((step) => (step.kind === "issue" && overDns.has(step.host) ? { ...step, challenge: "dns-01" as const } : step)));
      describe.push(...certificates.describe);
      // The proxy's settings (connection limit, ports, bind address) ride in the combined file,
      // rewritten by the commit when they lag behind the server spec.
      const settings = proxySettingsFor(server);
      if (spec?.web && !carriesSettings(observed.routesFile, settings)) {
        steps.push({ kind: "settings" });
        describe.push(`set the proxy's connection limit to ${settings.limits.maxConnections}, its ports to ${settings.listen.https} and ${settings.listen.http} on ${settings.listen.host}, and the panel on ${server.hostname}`);
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
          case "issue":
          case "wait":
          case "await-order":
          case "ask-renewal":
          case "drop-certificate": {
            const outcome = await work.apply(step, target.id, context);
            if (outcome !== undefined && "ordering" in outcome) ordering.push(outcome.ordering);
            else if (outcome !== undefined) waiting.push(outcome.waiting);
            break;
          }
          case "settings":
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
    // The local CA's CRL is reissued halfway through its validity, converged or not. The
    // certificate of the box's own hostname, which no service owns, is kept from here.
    start(context) {
      const refresh = () => localCa.refresh(context.server.hostname, context.logger).catch((error: unknown) => context.logger.event("ERROR", { err: error }, "reissuing the local CA's CRL"));
      void refresh();
      // A new server spec (the minion starts the actuators again for one) reaches the proxy even
      // on a box where no service has web hosting, so no service's plan would rewrite the file.
      void writeCombined(context, true).catch((error: unknown) => context.logger.event("ERROR", { err: error }, "writing the proxy's settings into proxy/routes.json"));
      const timer = setInterval(() => void refresh(), CRL_CHECK_INTERVAL_MS);
      timer.unref();
      const box = new BoxCertificate({ work, certsDir: paths.certs, now, checkMs: options.boxCheckMs ?? 3_600_000, orderPollMs }, context);
      box.start();
      return Promise.resolve({
        stop: async () => {
          clearInterval(timer);
          await box.stop();
          await work.stop();
        },
      });
    },

    async commit(context) {
      await writeCombined(context);
      await work.orderPending(context);
    },
  } satisfies Actuator<SnickersObserved, SnickersStep>;
}
