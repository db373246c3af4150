// A customer's mailboxes and aliases: added and removed from the account pages within the plan's
// limits, each change a write of the service spec through the state store (a new mailbox's
// password goes in as an inline hash, which the store moves to `secrets/`, as for a signup).
// Every field is hostile: a refused change says which field is wrong and why, and changes nothing.
import type { ServiceSpec } from "@coyote/spec";
import { audit } from "../audit.ts";
import type { CrmDb } from "../db.ts";
import { passwordProblem } from "../password-policy.ts";
import { getPlan, type Plan } from "../plans.ts";
import { inMinutes, LIMITS, reserveAttempt } from "../ratelimit.ts";
import { authorOf } from "../state.ts";
import { localPartProblem, normalizeLocalPart, type LocalPartUse } from "./mail-names.ts";
import { ownedService, type CustomerServiceRow } from "./services.ts";
import { credentialFor, currentHashes, messageOf, oneEditAtATime, readServiceSpec, schemeOf, withHashes, type EditStore } from "./spec-edit.ts";

/** What a change of mail accounts needs. */
export interface MailAccountDeps {
  readonly db: CrmDb;
  readonly store: EditStore;
  /** The signed-in customer. */
  readonly user: { readonly id: string; readonly email: string };
  readonly now?: () => number;
}

/** What a change did: a note to show, or what is wrong (nothing changed). */
export type MailAccountResult =
  | { readonly ok: true; readonly message: string }
  | { readonly ok: false; readonly message?: string; readonly errors?: Readonly<Record<string, string>> };

type Mail = NonNullable<ServiceSpec["mail"]>;

/** A change to make to a service's mail, or the field errors that refuse it. Pure. */
type Change = { readonly mail: Mail; readonly note: string; readonly action: string; readonly target: string } | { readonly errors: Record<string, string> };

/** A service the customer may change the mail of: their row, its plan and its spec. */
interface Editable {
  readonly row: CustomerServiceRow;
  readonly plan: Plan;
  readonly spec: ServiceSpec;
  readonly mail: Mail;
}

function text(input: Readonly<Record<string, unknown>>, name: string): string {
  const value = input[name];
  return typeof value === "string" ? value : "";
}

/** The service's mail, if the customer owns it and its plan includes mail; a message otherwise. */
async function editable(deps: MailAccountDeps, serviceId: string): Promise<Editable | { readonly message: string }> {
  const row = ownedService(deps.db, deps.user.id, serviceId);
  if (row === undefined) return { message: `you have no service ${JSON.stringify(serviceId.slice(0, 100))}` };
  const plan = getPlan(deps.db, row.planId);
  const spec = await readServiceSpec(deps.store, row.serviceId);
  if (plan?.mail !== true || spec?.mail === undefined) return { message: `${row.domain} has no mail in its plan` };
  return { row, plan, spec, mail: spec.mail };
}

/** Every address of the service's mail: its mailboxes and aliases. */
function taken(mail: Mail): Set<string> {
  return new Set([...mail.mailboxes.map((b) => b.address), ...mail.aliases.map((a) => a.address)]);
}

/**
 * The address a form asks for: a checked local part at one of the service's domains, or the field
 * errors. The fields are named by the use (`mailbox` and `mailboxDomain`, `alias` and
 * `aliasDomain`), so that the two forms of one page never share a field's id.
 */
function addressOf(input: Readonly<Record<string, unknown>>, spec: ServiceSpec, use: LocalPartUse): { address: string } | { errors: Record<string, string> } {
  const local = normalizeLocalPart(text(input, use));
  const names = spec.domains.map((d) => d.name);
  const asked = text(input, `${use}Domain`).trim().toLowerCase();
  const domain = asked === "" ? names[0] : asked;
  const problem = localPartProblem(local, use);
  if (problem !== undefined) return { errors: { [use]: problem } };
  if (domain === undefined || !names.includes(domain)) return { errors: { [`${use}Domain`]: `choose one of your domains: ${names.join(", ")}` } };
  return { address: `${local}@${domain}` };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Adds a mailbox with its own password. Pure but for the credential, made by `hash`. */
function planAddMailbox(e: Editable, input: Readonly<Record<string, unknown>>, hash: (password: string) => string): Change {
  const wanted = addressOf(input, e.spec, "mailbox");
  if ("errors" in wanted) return wanted;
  const { address } = wanted;
  if (taken(e.mail).has(address)) return { errors: { mailbox: `${address} exists already` } };
  const max = e.plan.maxMailboxes;
  if (e.mail.mailboxes.length >= max) return { errors: { form: `your plan (${e.plan.name}) includes ${plural(max, "mailbox", "mailboxes")} and you have ${e.mail.mailboxes.length}; remove one first` } };
  const password = text(input, "password");
  const problem = passwordProblem(password, address);
  if (problem !== undefined) return { errors: { password: problem } };
  if (text(input, "confirm") !== password) return { errors: { confirm: "the two passwords differ; type the same password twice" } };
  return { mail: { ...e.mail, mailboxes: [...e.mail.mailboxes, { address, passwordHash: hash(password) }] }, note: `Added the mailbox ${address}.`, action: "mail.mailbox.add", target: address };
}

/**
 * Gives a mailbox the customer added a new password (its fields are `mailboxPassword` and
 * `mailboxConfirm`, apart from the add form's). The account's own mailbox follows the account's
 * password instead. Pure but for the credential, made by `hash`.
 */
function planSetMailboxPassword(e: Editable, input: Readonly<Record<string, unknown>>, hash: (password: string) => string): Change {
  const address = text(input, "address").trim().toLowerCase();
  if (!e.mail.mailboxes.some((b) => b.address === address)) return { errors: { address: `choose one of your mailboxes: ${e.mail.mailboxes.map((b) => b.address).join(", ")}` } };
  if (address === e.row.mailAddress) return { errors: { address: `${address} uses your account's password; change it on the password page` } };
  const password = text(input, "mailboxPassword");
  const problem = passwordProblem(password, address);
  if (problem !== undefined) return { errors: { mailboxPassword: problem } };
  if (text(input, "mailboxConfirm") !== password) return { errors: { mailboxConfirm: "the two passwords differ; type the same password twice" } };
  const mail = withHashes(e.spec, new Map([[`mail:${address}`, hash(password)]])).mail ?? e.mail;
  return { mail, note: `The mailbox ${address} has its new password.`, action: "mail.mailbox.password", target: address };
}

/** Removes a mailbox the customer added (the signup's own one stays, and one that aliases forward to waits for them). Pure. */
function planRemoveMailbox(e: Editable, input: Readonly<Record<string, unknown>>): Change {
  const address = text(input, "address").trim().toLowerCase();
  if (!e.mail.mailboxes.some((b) => b.address === address)) return { errors: { form: `there is no mailbox ${JSON.stringify(address.slice(0, 300))} to remove` } };
  if (address === e.row.mailAddress) return { errors: { form: `${address} is your account's own mailbox; it stays as long as the service` } };
  const forwarding = e.mail.aliases.filter((a) => a.to.includes(address)).map((a) => a.address);
  if (forwarding.length > 0) return { errors: { form: `first remove the aliases that forward to ${address}: ${forwarding.join(", ")}` } };
  if (e.mail.catchAll === address) return { errors: { form: `${address} receives the mail of unknown addresses; it cannot be removed` } };
  return { mail: { ...e.mail, mailboxes: e.mail.mailboxes.filter((b) => b.address !== address) }, note: `Removed the mailbox ${address} and the mail in it.`, action: "mail.mailbox.remove", target: address };
}

/** Adds an alias that forwards to one of the service's own mailboxes. Pure. */
function planAddAlias(e: Editable, input: Readonly<Record<string, unknown>>): Change {
  const wanted = addressOf(input, e.spec, "alias");
  if ("errors" in wanted) return wanted;
  const { address } = wanted;
  if (taken(e.mail).has(address)) return { errors: { alias: `${address} exists already` } };
  const to = text(input, "to").trim().toLowerCase();
  // Forwarding out of the box would make it relay mail it cannot vouch for: aliases stay inside the service.
  if (!e.mail.mailboxes.some((b) => b.address === to)) return { errors: { to: `choose one of your mailboxes: ${e.mail.mailboxes.map((b) => b.address).join(", ")}` } };
  const max = e.plan.maxAliases;
  if (e.mail.aliases.length >= max) return { errors: { form: max === 0 ? `your plan (${e.plan.name}) includes no aliases` : `your plan (${e.plan.name}) includes ${plural(max, "alias", "aliases")} and you have ${e.mail.aliases.length}; remove one first` } };
  return { mail: { ...e.mail, aliases: [...e.mail.aliases, { address, to: [to] }] }, note: `Added the alias ${address}, which forwards to ${to}.`, action: "mail.alias.add", target: address };
}

/** Removes an alias. Pure. */
function planRemoveAlias(e: Editable, input: Readonly<Record<string, unknown>>): Change {
  const address = text(input, "address").trim().toLowerCase();
  if (!e.mail.aliases.some((a) => a.address === address)) return { errors: { form: `there is no alias ${JSON.stringify(address.slice(0, 300))} to remove` } };
  return { mail: { ...e.mail, aliases: e.mail.aliases.filter((a) => a.address !== address) }, note: `Removed the alias ${address}.`, action: "mail.alias.remove", target: address };
}

/** The changes a customer can make to their mail. */
export type MailChangeKind = "add-mailbox" | "set-mailbox-password" | "remove-mailbox" | "add-alias" | "remove-alias";

/**
 * Makes one change to the mail of a customer's service: checks that the service is theirs and its
 * plan has mail, counts the change against the account's limit, then (one change at a time in this
 * process) reads the spec, checks the form against it and writes the changed spec. The audit log
 * records who, what and which address, never a password.
 * @param deps the database, state store and signed-in customer.
 * @param kind which change.
 * @param input the submitted form's fields (`service`, and `mailbox`, `mailboxDomain`, `password` and `confirm`; `address`, `mailboxPassword` and `mailboxConfirm`; `alias`, `aliasDomain` and `to`; or `address`).
 */
export async function changeMail(deps: MailAccountDeps, kind: MailChangeKind, input: Readonly<Record<string, unknown>>): Promise<MailAccountResult> {
  const serviceId = text(input, "service");
  const first = await editable(deps, serviceId);
  if ("message" in first) return { ok: false, message: first.message };
  const now = (deps.now ?? Date.now)();
  const wait = reserveAttempt(deps.db, [[`account-edit:${deps.user.id}`, LIMITS.accountEditPerAccount]], now);
  if (wait > 0) return { ok: false, message: `you made many changes in a short while; try again ${inMinutes(wait)}` };
  return oneEditAtATime(async () => {
    // Read again under the lock: an earlier change may have landed meanwhile.
    const e = await editable(deps, serviceId);
    if ("message" in e) return { ok: false, message: e.message };
    let change: Change;
    try {
      change = await planChange(deps, e, kind, input);
    } catch (error) {
      return { ok: false, message: `changing the mail of ${e.row.domain} failed: ${messageOf(error)}` };
    }
    if ("errors" in change) {
      const { form, ...fields } = change.errors;
      return { ok: false, ...(form === undefined ? {} : { message: form }), errors: fields };
    }
    try {
      await deps.store.applySpec({ ...e.spec, mail: change.mail }, { author: authorOf(deps.user.email), message: `account: ${deps.user.email}: ${change.action} ${change.target}` });
    } catch (error) {
      return { ok: false, message: `changing the mail of ${e.row.domain} failed: ${messageOf(error)}; nothing was changed` };
    }
    audit(deps.db, deps.user.email, change.action, change.target, { service: e.row.serviceId });
    return { ok: true, message: change.note };
  });
}

/** Makes a service's credentials: in the scheme its accounts share (scramHashFor). */
async function hasher(deps: MailAccountDeps, e: Editable): Promise<(password: string) => string> {
  const scheme = schemeOf(await currentHashes(deps.store, e.spec));
  return (password) => credentialFor(scheme, password);
}

async function planChange(deps: MailAccountDeps, e: Editable, kind: MailChangeKind, input: Readonly<Record<string, unknown>>): Promise<Change> {
  switch (kind) {
    case "add-mailbox":
      return planAddMailbox(e, input, await hasher(deps, e));
    case "set-mailbox-password":
      return planSetMailboxPassword(e, input, await hasher(deps, e));
    case "remove-mailbox":
      return planRemoveMailbox(e, input);
    case "add-alias":
      return planAddAlias(e, input);
    case "remove-alias":
      return planRemoveAlias(e, input);
  }
}

/** A service's mail as its account page shows it. */
export interface MailAccountsView {
  readonly domains: readonly string[];
  readonly mailboxes: ReadonlyArray<{ readonly address: string; readonly own: boolean; readonly forwardedFrom: readonly string[] }>;
  readonly aliases: ReadonlyArray<{ readonly address: string; readonly to: readonly string[] }>;
  readonly maxMailboxes: number;
  readonly maxAliases: number;
}

/**
 * What the account page shows of a service's mail, or undefined when its plan has none.
 * @param spec the service spec.
 * @param row the customer's row of the service (its own mailbox).
 * @param plan the service's plan (its limits).
 */
export function mailAccountsOf(spec: ServiceSpec | undefined, row: Pick<CustomerServiceRow, "mailAddress">, plan: Pick<Plan, "mail" | "maxMailboxes" | "maxAliases"> | undefined): MailAccountsView | undefined {
  const mail = spec?.mail;
  if (spec === undefined || mail === undefined || plan?.mail !== true) return undefined;
  return {
    domains: spec.domains.map((d) => d.name),
    mailboxes: mail.mailboxes.map((b) => ({ address: b.address, own: b.address === row.mailAddress, forwardedFrom: mail.aliases.filter((a) => a.to.includes(b.address)).map((a) => a.address) })),
    aliases: mail.aliases.map((a) => ({ address: a.address, to: a.to })),
    maxMailboxes: plan.maxMailboxes,
    maxAliases: plan.maxAliases,
  };
}
