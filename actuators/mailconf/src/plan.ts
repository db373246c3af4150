import { ActuatorError } from "@coyote/actuator";
import type { Target } from "@coyote/actuator";
import type { PartialPlan } from "@coyote/actuator/unmet";
import { buildFragment, fragmentText } from "./fragment.ts";
import type { MailFragment } from "./fragment.ts";
import { compareStrings, type MailObserved } from "./observe.ts";
import type { ResolvedOptions } from "./options.ts";

/** One change the actuator makes for a service, in the order the plan lists them. */
export type MailStep =
  | { readonly kind: "remove-dkim"; readonly domain: string }
  | { readonly kind: "write-fragment"; readonly text: string }
  | { readonly kind: "remove-fragment" }
  | { readonly kind: "ensure-dkim"; readonly domain: string }
  /** The daemons do not serve the service yet: the apply asks to be called again after `afterMs`. */
  | { readonly kind: "await-daemons"; readonly reason: "CertificateMissing" | "PostfixDown" | "DovecotDown" | "SignerDown" | "MailPending"; readonly message: string; readonly afterMs: number };

/**
 * The step that waits for the running daemons, when they do not serve the service yet: Postfix
 * down or behind (a reload pending, or a domain not in the committed maps), Dovecot down or not
 * knowing a mailbox, no certificate to present (named first: without it Dovecot cannot start), or
 * the service's files about to change (they reach the daemons at the commit).
 */
function awaitDaemons(id: string, desired: MailFragment, observed: MailObserved, changing: boolean): Extract<MailStep, { kind: "await-daemons" }> | undefined {
  const live = observed.live;
  const why: string[] = [];
  if (live?.postfix !== undefined) why.push(live.postfix);
  else {
    const unserved = desired.domains.filter((domain) => observed.owners[domain] !== id);
    if (unserved.length > 0) why.push(`postfix does not serve ${unserved.join(", ")} yet`);
  }
  if (live?.dovecot !== undefined) why.push(live.dovecot);
  if (live?.signer !== undefined) why.push(live.signer);
  if (live?.certificate !== undefined) why.push(live.certificate);
  if (why.length === 0 && !changing) return undefined;
  const down = (text: string | undefined) => text !== undefined && !/ yet$/.test(text);
  const reason = live?.certificate !== undefined ? "CertificateMissing" : down(live?.postfix) ? "PostfixDown" : down(live?.dovecot) ? "DovecotDown" : live?.signer !== undefined ? "SignerDown" : "MailPending";
  const message = `mail for service ${id} is not served yet: ${why.length > 0 ? why.join("; ") : "its new configuration reaches postfix and dovecot at the commit"}`;
  return { kind: "await-daemons", reason, message, afterMs: reason === "MailPending" ? 1000 : 5000 };
}

/**
 * Plans one service. Pure: everything it needs was observed. A mailbox whose password hash Dovecot
 * cannot use is left out (or keeps its previous hash) and named in the plan's `unmet`
 * (`UnsupportedPasswordHash`): the other mailboxes are planned, and once they are in place the
 * plan has no steps while the condition still names the bad one.
 * @throws ActuatorError `MailDomainTaken` (retried: it clears when the other service lets go of
 *   the domain), `DuplicateAddress`/`InvalidAddress`/`InvalidDkimKey` (terminal).
 */
export function planMail(options: ResolvedOptions, target: Target, observed: MailObserved): PartialPlan<MailStep> {
  const id = target.id;
  const spec = target.spec?.mail === undefined ? undefined : target.spec;
  const steps: MailStep[] = [];
  const describe: string[] = [];
  let desired: MailFragment | undefined;
  let rejected: ReturnType<typeof buildFragment>["rejected"] = [];
  if (spec !== undefined) {
    for (const { name } of spec.domains) {
      const owner = observed.owners[name];
      if (owner !== undefined && owner !== id) {
        throw new ActuatorError("MailDomainTaken", `planning mail for service ${id}: domain ${name} already receives mail for service ${owner}`);
      }
    }
    ({ fragment: desired, rejected } = buildFragment(id, spec, observed.fragment, options.passwordSchemes));
  }
  const desiredDomains = new Set(desired?.domains ?? []);
  // Withdraw the DKIM files of domains this service no longer has, before the fragment that
  // records them goes: a crash in between must not forget what there is to withdraw.
  for (const domain of [...(observed.fragment?.domains ?? [])].sort(compareStrings)) {
    if (desiredDomains.has(domain)) continue;
    const owner = observed.owners[domain];
    const dkim = observed.dkim[domain];
    if ((owner === undefined || owner === id) && dkim !== undefined && (dkim.keyMode !== undefined || dkim.recordText !== undefined)) {
      steps.push({ kind: "remove-dkim", domain });
      describe.push(`remove the DKIM key and record of ${domain}`);
    }
  }
  if (desired !== undefined) {
    const text = fragmentText(desired);
    if (text !== observed.fragmentText) {
      steps.push({ kind: "write-fragment", text });
      describe.push(`write the mail of ${desired.domains.join(", ")}: ${desired.mailboxes.length} mailbox(es), ${desired.aliases.length} alias(es)`);
    }
  } else if (observed.fragmentText !== undefined) {
    steps.push({ kind: "remove-fragment" });
    describe.push("remove the service's mail domains, mailboxes and aliases (Maildirs are kept)");
  }
  for (const domain of desired?.domains ?? []) {
    const dkim = observed.dkim[domain];
    if (dkim?.keyError !== undefined) {
      throw new ActuatorError("InvalidDkimKey", `planning mail for service ${id}: the DKIM key of ${domain} cannot be used (${dkim.keyError}); it is never replaced automatically, remove it by hand to get a new one`, { terminal: true });
    }
    if (dkim?.keyMode === undefined) {
      steps.push({ kind: "ensure-dkim", domain });
      describe.push(`create the DKIM key of ${domain}`);
    } else if (dkim.keyMode !== 0o600 || dkim.recordText !== dkim.expectedRecordText) {
      steps.push({ kind: "ensure-dkim", domain });
      describe.push(`write the DKIM record of ${domain}`);
    }
  }
  if (options.verifyDaemons && desired !== undefined) {
    const wait = awaitDaemons(id, desired, observed, steps.length > 0);
    if (wait !== undefined) {
      steps.push(wait);
      describe.push(wait.message);
    }
  }
  if (rejected.length === 0) return { steps, describe };
  const detail = `unsupported password hash for ${rejected.map((r) => `${r.address} (${r.why}${r.keptPrevious ? "; its previous hash is kept" : "; the mailbox is not created"})`).join(", ")}`;
  // The prefix says what was under way: the rest of the service being applied, or nothing left to do.
  return { steps, describe, unmet: { reason: "UnsupportedPasswordHash", message: `${steps.length > 0 ? "applying" : "planning"} mail for service ${id}: ${detail}` } };
}
