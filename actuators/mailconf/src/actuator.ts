import type { Actuator, ActuatorContext, Plan, Requeue, Target } from "@coyote/actuator";
import type { PartialPlan } from "@coyote/actuator/unmet";
import { FileCache } from "@coyote/actuator";
import type { ServerSpec } from "@coyote/spec";
import { withCredentials } from "@coyote/spec";
import { applyMail } from "./apply.ts";
import { commitMail } from "./commit.ts";
import { LiveCheck } from "./live.ts";
import { observeMail, type MailObserved } from "./observe.ts";
import { resolveOptions } from "./options.ts";
import type { MailActuatorOptions } from "./options.ts";
import { MailDomainIndex, mailPaths } from "./paths.ts";
import { planMail, type MailStep } from "./plan.ts";

export type { DkimObserved, MailObserved } from "./observe.ts";
export { MailDomainIndex, mailPaths, type MailPaths } from "./paths.ts";
export type { MailStep } from "./plan.ts";

/** The actuator's id. */
export const MAIL_ACTUATOR_ID = "actuator.mailconf.postfix";
/** The condition it reports on each service. */
export const MAIL_CONDITION = "MailReady";

/**
 * Creates the mail actuator (`actuator.mailconf.postfix`, condition `MailReady`): Postfix virtual
 * domains, mailboxes and aliases, Dovecot users with hashed passwords, and a DKIM key per domain
 * that dnsconf publishes. Side-effect free: it only checks its options.
 *
 * Per service, `apply` writes the service's fragment (`<stateDir>/mail/services/<id>.json`) and
 * its domains' DKIM keys. `commit` rebuilds the combined Postfix maps and the Dovecot users file
 * from all fragments, writes only the files whose content changed, and runs `postfix reload` once
 * when a Postfix file changed (a marker file makes a reload interrupted by a crash happen at the
 * next commit). It also renders `dovecot.conf` (IMAP over TLS, the SASL socket Postfix's submission
 * uses) and reloads Dovecot when that changes; users need no reload, Dovecot re-reads its passwd-file.
 *
 * A deleted service (or one without `mail`) loses its fragment, so its domains, mailboxes and
 * aliases leave the maps at the next commit, and its DKIM key and record are removed. Its
 * Maildirs are never deleted: mail is not lost because a spec was removed, perhaps by mistake.
 *
 * With `verifyDaemons`, `MailReady` is True only once the running Postfix has loaded the service's
 * maps and the running Dovecot knows its mailboxes; until then the apply asks to be called again
 * and the condition names the daemon that is down or behind.
 *
 * Signing outgoing mail (OpenDKIM or similar) is out of scope: the keys are made and published so
 * that a signer can be added without touching DNS.
 * @throws ActuatorError `InvalidOptions` (terminal) for a bad option.
 */
export function createMailActuator(options: MailActuatorOptions): Actuator<MailObserved, MailStep> {
  const resolved = resolveOptions(options);
  const paths = mailPaths(resolved.stateDir);
  // Every service's observe consults the domain index; it is parsed again only when it changed.
  const domainIndex = new FileCache(paths.index, (text) => MailDomainIndex.parse(JSON.parse(text)).owners);
  const live = resolved.verifyDaemons ? new LiveCheck(resolved, paths) : undefined;
  return {
    id: MAIL_ACTUATOR_ID,
    condition: MAIL_CONDITION,
    appliesTo: (spec) => spec.mail !== undefined,

    observe(target: Target, context: ActuatorContext): Promise<MailObserved> {
      return observeMail(paths, domainIndex, resolved.dkimSelector, target, context, live);
    },

    plan(target: Target, observed: MailObserved, _server: ServerSpec): PartialPlan<MailStep> {
      // Plan from the spec with its credentials read (observe); a spec that names no secret is the same.
      return planMail(resolved, target.spec === undefined ? target : { ...target, spec: withCredentials(target.spec, observed.credentials ?? new Map()) }, observed);
    },

    apply(plan: Plan<MailStep>, target: Target, context: ActuatorContext): Promise<Requeue | undefined> {
      return applyMail(resolved, paths, plan, target, context);
    },

    commit(context: ActuatorContext): Promise<void> {
      return commitMail(resolved, paths, domainIndex, context);
    },
  };
}
