// A customer's signup, from the submitted form to a stored service spec: validation, the names
// derived from the domain, the starter site, the account and the spec, undone as a whole when a
// step fails. Plain functions over their inputs (database, state store, server spec), so that the
// whole path is tested without Next; the server action only adds the session and the redirect.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { eq } from "drizzle-orm";
import { z } from "zod";
import { scramSha256Credentials } from "@coyote/spec";
import { isUnderCustomerDomain, ServiceSpec, type ServerSpec, type StateStore } from "@coyote/spec";
import type { CrmDb } from "../db.ts";
import { fieldErrors } from "../forms.ts";
import { hashPassword } from "../passwords.ts";
import { getPlan, type Plan } from "../plans.ts";
import { countFailure, inMinutes, LIMITS, retryAfterMs } from "../ratelimit.ts";
import { customerServices, users } from "../schema.ts";
import { newUserId } from "../sessions.ts";
import { authorOf, servicesOf } from "../state.ts";
import { classifyDomain, deriveServiceId, domainTaken, mailLocalPart, normalizeDomain } from "./domains.ts";
import { passwordProblem } from "../password-policy.ts";
import { removeStarterSite, siteDir, writeStarterSite } from "./site.ts";

/** What of the state store a signup uses (a narrow view, so that tests can make a step fail). */
export type SignupStore = Pick<StateStore, "applySpec" | "readSpecs" | "getSpec" | "deleteSpec">;

/** What a signup's validation checks the form against. */
export interface SignupContext {
  readonly db: CrmDb;
  /** The box's server spec: its hostname, customer domain. */
  readonly server: Pick<ServerSpec, "hostname" | "customerDomain">;
  /** Every service spec on the box (for taken domains). */
  readonly services: readonly ServiceSpec[];
}

function hasPasswords(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const fields = value as { password?: unknown; confirm?: unknown };
  return typeof fields.password === "string" && typeof fields.confirm === "string";
}

/**
 * The signup form's schema, checked against the box's current state: every rule of a field gives
 * that field's error, and the password rules (which depend on the e-mail) run even when another
 * field is wrong, so the customer sees every problem at once.
 * @param ctx the database, the server spec and the existing services.
 */
export function signupSchema(ctx: SignupContext) {
  const { db, server, services } = ctx;
  const customerDomains = db.select({ domain: customerServices.domain }).from(customerServices).all().map((r) => r.domain);
  return z
    .object({
      email: z
        .string()
        .trim()
        .toLowerCase()
        .min(1, { error: "enter your e-mail address" })
        .max(254, { error: "an e-mail address has at most 254 characters" })
        .pipe(z.email({ error: "enter a valid e-mail address, like you@example.org" })),
      password: z.string({ error: "enter a password" }),
      confirm: z.string({ error: "repeat your password" }),
      domain: z
        .string({ error: "enter a domain" })
        .max(300, { error: "a domain name has at most 253 characters" })
        .transform(normalizeDomain)
        .superRefine((name, issue) => {
          const claim = classifyDomain(name, server);
          const problem = claim.ok ? domainTaken(name, services, customerDomains) : claim.error;
          if (problem !== undefined) issue.addIssue({ code: "custom", message: problem });
        }),
      plan: z.string({ error: "choose a plan" }).transform((id, issue): Plan => {
        const plan = id === "" ? undefined : getPlan(db, id);
        if (plan === undefined || !plan.active) {
          issue.addIssue({ code: "custom", message: id === "" ? "choose a plan" : `there is no plan ${JSON.stringify(id)} to sign up for; choose one of the list` });
          return z.NEVER;
        }
        return plan;
      }),
    })
    .superRefine(
      (form, issue) => {
        // The e-mail may be the field that failed (then it is no string, or not a valid one yet).
        const email: unknown = form.email;
        const problem = passwordProblem(form.password, typeof email === "string" ? email : "");
        if (problem !== undefined) issue.addIssue({ code: "custom", path: ["password"], message: problem });
        else if (form.confirm !== form.password) issue.addIssue({ code: "custom", path: ["confirm"], message: "the two passwords differ; type the same password twice" });
      },
      // Zod skips an object's refinement when a field failed; the password rules run regardless,
      // as long as both password fields are there.
      { when: (payload) => hasPasswords(payload.value) },
    );
}

/** What {@link buildServiceSpec} makes a spec from. */
export interface StarterServiceInput {
  readonly serviceId: string;
  readonly userId: string;
  /** The customer's own e-mail address (the owner's contact). */
  readonly email: string;
  readonly plan: Pick<Plan, "id" | "web" | "mail" | "xmpp">;
  readonly domain: string;
  readonly authoritative: boolean;
  /** The ownership proof token of a customer's own domain (none for a name under the box's customer domain). */
  readonly challenge?: string;
  /** The local part of the mailbox and the XMPP username. */
  readonly local: string;
  /** The SCRAM credential (`{SCRAM-SHA-256}` for a new service) for both the mailbox and the XMPP account. */
  readonly passwordHash: string;
}

/** The service spec of a new signup: the domain, and the web, mail and XMPP parts its plan includes. */
export function buildServiceSpec(input: StarterServiceInput): z.input<typeof ServiceSpec> {
  const { plan, domain, local, passwordHash } = input;
  return {
    schemaVersion: 1,
    kind: "Service",
    id: input.serviceId,
    owner: { customerId: input.userId, email: input.email },
    plan: plan.id,
    domains: [{ name: domain, authoritative: input.authoritative, ...(input.challenge === undefined ? {} : { challenge: input.challenge }) }],
    ...(plan.web ? { web: { hostnames: [domain], backend: { kind: "static" as const, root: "." } } } : {}),
    ...(plan.mail ? { mail: { mailboxes: [{ address: `${local}@${domain}`, passwordHash }] } } : {}),
    ...(plan.xmpp ? { xmpp: { users: [{ username: local, domain, passwordHash }] } } : {}),
  };
}

/** A fresh ownership proof token: 192 random bits, base64url (public: it only names what to publish). */
export function newProofToken(): string {
  return randomBytes(24).toString("base64url");
}

/** What a signup needs: the crm's database and state, the server spec as it is now, the client. */
export interface SignupDeps {
  readonly db: CrmDb;
  readonly store: SignupStore;
  readonly server: ServerSpec;
  /** The crm's state folder (sites go to `<stateDir>/sites/<serviceId>`). */
  readonly stateDir: string;
  /** The client's address, for the rate limit. */
  readonly clientAddress: string;
  /** The clock, for tests (default Date.now). */
  readonly now?: () => number;
}

/** What a signup did: the new account and service, or the errors to show (nothing was created). */
export type SignupResult =
  | { readonly ok: true; readonly userId: string; readonly email: string; readonly serviceId: string; readonly domain: string }
  | { readonly ok: false; readonly message?: string; readonly errors?: Readonly<Record<string, string>> };

/**
 * The answer when the e-mail address already has an account. It comes only once everything else
 * in the form is valid and a password was hashed, as for a new account, and costs a signup from
 * the address's allowance: finding out which addresses have accounts is slow and costly, and is
 * not a field check anyone can run for free.
 */
export const ACCOUNT_NOT_MADE = "no account could be made with these details; if you have one here already, sign in instead";

function emailTaken(db: CrmDb, email: string): boolean {
  return db.select({ id: users.id }).from(users).where(eq(users.email, email)).get() !== undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}


// Signups of this process run one at a time: between the "domain free, id free" checks and the
// writes nothing else of the shop may claim the same names. (The database's unique keys catch
// another process; the spec's id is then re-checked by its row's primary key.)
let queue: Promise<unknown> = Promise.resolve();
function oneAtATime<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

/**
 * Signs a customer up: checks the form, then writes the starter site, the account with its
 * service row (one transaction) and the service spec, in that order. When a step fails, the
 * earlier ones are undone, so a failed signup leaves no account, no spec and no site.
 * Every attempt counts against the client address's signup limit.
 * @param deps the database, state store, server spec, state folder and client address.
 * @param input the submitted form's fields (email, password, confirm, domain, plan).
 * @returns the new user and service, or the message and field errors to show.
 */
export async function signUp(deps: SignupDeps, input: Readonly<Record<string, unknown>>): Promise<SignupResult> {
  const { db, server } = deps;
  const now = (deps.now ?? Date.now)();
  if (!server.signupsOpen) return { ok: false, message: "signups are closed right now; please come back later" };
  const key = `signup-ip:${deps.clientAddress}`;
  const wait = retryAfterMs(db, key, LIMITS.signupPerAddress, now);
  if (wait > 0) return { ok: false, message: `too many signups from your address; try again ${inMinutes(wait)}` };
  countFailure(db, key, LIMITS.signupPerAddress, now);
  return oneAtATime(() => create(deps, input, now));
}

async function create(deps: SignupDeps, input: Readonly<Record<string, unknown>>, now: number): Promise<SignupResult> {
  const { db, store, server, stateDir } = deps;
  const specs = await store.readSpecs();
  const parsed = signupSchema({ db, server, services: servicesOf(specs) }).safeParse(input);
  if (!parsed.success) return { ok: false, errors: fieldErrors(parsed.error) };
  const { email, password, domain, plan } = parsed.data;
  const claim = classifyDomain(domain, server);
  if (!claim.ok) return { ok: false, errors: { domain: claim.error } };

  const specIds = new Set(specs.map((entry) => entry.id));
  const rowIds = new Set(db.select({ id: customerServices.serviceId }).from(customerServices).all().map((r) => r.id));
  const serviceId = deriveServiceId(domain, (id) => specIds.has(id) || rowIds.has(id) || existsSync(siteDir(stateDir, id)));
  const local = mailLocalPart(email);
  const userId = newUserId();
  const siteRoot = siteDir(stateDir, serviceId);
  // A customer's own domain is served once its owner shows control over it with this token
  // (domain-proof.ts); a name under the box's customer domain is the box's to hand out.
  const challenge = isUnderCustomerDomain(domain, server) ? undefined : newProofToken();
  // A new service has no accounts yet, so its mail and XMPP credential takes the strongest scheme
  // Dovecot and Prosody both verify; its Prosody host is SHA-256 from the start.
  const spec = buildServiceSpec({ serviceId, userId, email, plan, domain, authoritative: claim.authoritative, challenge, local, passwordHash: scramSha256Credentials(password) });
  // The store validates too, but only after the site and the rows exist; a spec this shop cannot
  // make valid is better refused before anything is written.
  const valid = ServiceSpec.safeParse(spec);
  if (!valid.success) return { ok: false, message: `setting up ${domain} failed: ${valid.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}` };
  const accountHash = await hashPassword(password);
  if (emailTaken(db, email)) return { ok: false, message: ACCOUNT_NOT_MADE };

  // Only a plan with a website gets a site folder: nothing would serve one without it.
  if (plan.web) {
    try {
      await writeStarterSite(stateDir, serviceId, domain);
    } catch (error) {
      return { ok: false, message: `setting up ${domain} failed: ${messageOf(error)}` };
    }
  }

  const createdAt = new Date(now).toISOString();
  try {
    db.transaction((tx) => {
      tx.insert(users).values({ id: userId, email, passwordHash: accountHash, role: "customer", createdAt }).run();
      tx.insert(customerServices)
        .values({ serviceId, userId, planId: plan.id, domain, mailAddress: plan.mail ? `${local}@${domain}` : null, xmppAddress: plan.xmpp ? `${local}@${domain}` : null, createdAt })
        .run();
    });
  } catch (error) {
    await removeStarterSite(siteRoot);
    // Another signup of the same address won the race: the same answer as above.
    if (emailTaken(db, email)) return { ok: false, message: ACCOUNT_NOT_MADE };
    return { ok: false, message: `creating the account for ${email} failed: ${messageOf(error)}` };
  }

  try {
    await store.applySpec(spec, { author: authorOf(email), message: `signup: ${domain} for ${email} (plan ${plan.id})` });
  } catch (error) {
    await undo(deps, { userId, serviceId, siteRoot, email });
    return { ok: false, message: `setting up ${domain} failed: ${messageOf(error)}` };
  }
  return { ok: true, userId, email, serviceId, domain };
}

/** Undoes a signup whose spec could not be stored: the rows, the site, and a spec a failed write left. */
async function undo(deps: SignupDeps, made: { userId: string; serviceId: string; siteRoot: string; email: string }): Promise<void> {
  const { db, store } = deps;
  db.transaction((tx) => {
    tx.delete(customerServices).where(eq(customerServices.serviceId, made.serviceId)).run();
    tx.delete(users).where(eq(users.id, made.userId)).run();
  });
  await removeStarterSite(made.siteRoot);
  // A write that failed after its file landed (a commit that broke) may have left the spec; only
  // this signup's own spec is removed, never one that another owner holds.
  const left = await store.getSpec(made.serviceId).catch(() => undefined);
  if (left?.kind === "Service" && left.owner?.customerId === made.userId) {
    await store.deleteSpec(made.serviceId, { author: authorOf(made.email), message: `signup: undo ${made.serviceId} after a failed write` }).catch(() => undefined);
  }
}
