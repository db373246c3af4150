/**
 * The xmppconf actuator, assembled from its parts: `files.ts` (the resolved layout and file
 * helpers), `observe.ts` (what is on disk for a service), `plan.ts` (the steps, pure),
 * `apply.ts` (writing them) and `reload.ts` (making a running Prosody load them). Rendering of
 * the configuration and account files is in `render.ts`.
 */
import type { ActuatorContext, Plan, Requeue, Target } from "@coyote/actuator";
import type { PartialPlan } from "@coyote/actuator/unmet";
import type { ServerSpec, ServiceSpec } from "@coyote/spec";
import { applyXmppPlan } from "./apply.ts";
import { resolveLayout } from "./files.ts";
import { LiveCheck } from "./live.ts";
import { createObserver } from "./observe.ts";
import { planXmpp } from "./plan.ts";
import { commitXmpp } from "./reload.ts";
import { renderMainConfig } from "./render.ts";
import type { XmppActuator, XmppActuatorOptions, XmppObserved, XmppStep } from "./types.ts";

export type { ObservedAccount, ObservedHostFile, XmppActuator, XmppActuatorOptions, XmppObserved, XmppStep } from "./types.ts";

/** The actuator's id. */
export const XMPP_ACTUATOR_ID = "actuator.xmppconf.prosody";
/** The condition it reports on each service with an `xmpp` section. */
export const XMPP_CONDITION = "XmppReady";

/**
 * Makes the Prosody actuator: one VirtualHost file per domain of every service that has
 * an `xmpp` section, owned by that service, and one account file per user of `xmpp.users` in
 * Prosody's `internal_hashed` store. Side-effect-free: nothing is read or written until the
 * minion calls it.
 *
 * Reload strategy. Account files are read by Prosody at every login (mod_auth_internal_hashed →
 * mod_storage_internal → datamanager.load, no cache), so adding, changing or removing a user
 * needs no reload; `commit` only closes the sessions of removed users and of users whose
 * password changed, as Prosody does itself on a password change. When the configuration on disk
 * differs from the one Prosody was last made to load, `commit` runs, through prosodyctl's admin
 * shell, `config:reload()` and then `host:activate` for every VirtualHost that is configured but
 * not active and `host:deactivate` for every active one no longer configured. Prosody 0.12's
 * reload (SIGHUP, `prosodyctl reload` or `config:reload()`) only re-reads the file, logging and
 * certificates: it neither starts nor stops VirtualHosts, which is why they are activated by
 * hand. No restart is needed, so other hosts' sessions are never dropped. A renewed certificate
 * is copied for Prosody at the next reconcile of the service (the minion's resync, every few
 * minutes, at the latest) and loaded by the same reload. Changes of the global
 * options (ports, interfaces, modules) do need a restart of Prosody, which only a changed
 * deployment causes.
 */
export function createXmppActuator(options: XmppActuatorOptions): XmppActuator {
  const layout = resolveLayout(options);
  // Rendered once: it depends on the options only, and plan must stay cheap and pure.
  const settings = { mainConfig: renderMainConfig(layout.mainInput), certificatesDir: layout.certificatesDir };
  const live = layout.verify ? new LiveCheck(layout) : undefined;
  const observer = createObserver(layout, live);

  return {
    id: XMPP_ACTUATOR_ID,
    condition: XMPP_CONDITION,
    configFile: layout.configFile,

    appliesTo(spec: ServiceSpec): boolean {
      return spec.xmpp !== undefined;
    },

    observe(target: Target, context: ActuatorContext): Promise<XmppObserved> {
      return observer.observe(target, context);
    },

    plan(target: Target, observed: XmppObserved, server: ServerSpec): PartialPlan<XmppStep> {
      // File sharing's URLs name the port snitch-proxy serves HTTPS on (443 in production).
      return planXmpp(target, observed, { ...settings, httpsPort: server.ports.https });
    },

    apply(plan: Plan<XmppStep>, target: Target, context: ActuatorContext): Promise<Requeue | undefined> {
      return applyXmppPlan(layout, plan, target, context);
    },

    async commit(context: ActuatorContext): Promise<void> {
      await commitXmpp(layout, observer.hostFiles, options.pidFile, context);
      // What Prosody serves has just changed: the next observe asks it again.
      live?.forget();
    },
  };
}
