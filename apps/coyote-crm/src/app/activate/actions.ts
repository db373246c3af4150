"use server";
import { redirect } from "next/navigation";
import { z } from "zod";
import { Email } from "@coyote/spec";
import { advanceTo, adminExists, createFirstAdmin, dropActivationToken, setBuddySkipped, tokenMatches } from "../../lib/activation.ts";
import { audit } from "../../lib/audit.ts";
import { clientIp, csrfValid, requireAdmin, setSessionCookie } from "../../lib/auth.ts";
import { checkAdminForm } from "../../lib/admin-form.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "../../lib/forms.ts";
import { crmDb } from "../../lib/instance.ts";
import { passwordProblem } from "../../lib/password-policy.ts";
import { hashPassword } from "../../lib/passwords.ts";
import { ensureDefaultPlan } from "../../lib/plans.ts";
import { clearFailures, inMinutes, LIMITS, reserveAttempt } from "../../lib/ratelimit.ts";
import { clientNetwork } from "../../lib/network.ts";
import { createSession, newUserId } from "../../lib/sessions.ts";
import { addBuddy, AlarmsInput, BuddyInput, KeysInput, saveAlarms, saveKeys, saveShop, SettingsError, ShopInput } from "../../lib/settings.ts";
import { readServer, stateStore } from "../../lib/state.ts";

const AdminInput = z
  .object({
    token: z.string().trim().min(1, { error: "enter the activation token that coyote up printed" }).max(100),
    email: z.string().trim().toLowerCase().pipe(Email),
    password: z.string().max(1024),
    confirm: z.string().max(1024),
  })
  .superRefine((v, ctx) => {
    const problem = passwordProblem(v.password, v.email);
    if (problem !== undefined) ctx.addIssue({ code: "custom", path: ["password"], message: problem });
    else if (v.password !== v.confirm) ctx.addIssue({ code: "custom", path: ["confirm"], message: "the two passwords differ" });
  });

/** Step 1: the one-time token unlocks the box; the admin account is made and signed in. */
export async function createAdmin(_prev: FormState, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const values = formValues(form, ["csrf", "password", "confirm", "token"]);
  const db = crmDb();
  const store = await stateStore();
  if ((await readServer(store)).activated || adminExists(db)) return { message: "this box already has its admin; sign in to go on", values };
  const parsed = AdminInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  // Counted before the token is compared, so parallel guesses cannot all be checked.
  const key = `activation-net:${clientNetwork(await clientIp())}`;
  const wait = reserveAttempt(db, [[key, LIMITS.activationPerAddress]]);
  if (wait > 0) return { errors: { token: `too many wrong tokens; try again ${inMinutes(wait)}` }, values };
  if (!(await tokenMatches(store, parsed.data.token))) {
    return { errors: { token: "this is not the activation token of this box (coyote up printed it; it is also in secrets/activation-token)" }, values };
  }
  clearFailures(db, key);
  const id = newUserId();
  const passwordHash = await hashPassword(parsed.data.password);
  if (!createFirstAdmin(db, { id, email: parsed.data.email, passwordHash, createdAt: new Date().toISOString() })) {
    return { message: "this box already has its admin; sign in to go on", values };
  }
  const session = createSession(db, id);
  await setSessionCookie(session.token, session.expiresAt);
  audit(db, parsed.data.email, "activation: admin account created", "panel");
  advanceTo(db, "alarms");
  redirect("/activate/alarms");
}

/** Step 2: where alarms go. */
export async function saveAlarmsStep(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, AlarmsInput);
  if (!checked.ok) return checked.state;
  const { admin, data } = checked;
  await saveAlarms(await stateStore(), admin.email, data);
  audit(crmDb(), admin.email, "set alarm destinations", "server", { emails: data.emails, webhooks: data.webhooks.length });
  advanceTo(crmDb(), "keys");
  redirect("/activate/keys");
}

/** Step 3: provider API keys, or skip. */
export async function saveKeysStep(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const db = crmDb();
  if (form.get("skip") === "1") {
    audit(db, admin.email, "activation: skipped provider keys", "server");
    advanceTo(db, "buddy");
    redirect("/activate/buddy");
  }
  const parsed = KeysInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values: formValues(form, ["csrf", "vultr", "namecheapKey"]) };
  if (parsed.data.vultr === "" && parsed.data.namecheapKey === "") return { errors: { vultr: "enter a key, or choose Skip for now" } };
  await saveKeys(await stateStore(), admin.email, parsed.data);
  // Which providers, never the keys themselves.
  audit(db, admin.email, "set provider API keys", "server", { vultr: parsed.data.vultr !== "", namecheap: parsed.data.namecheapKey !== "" });
  advanceTo(db, "buddy");
  redirect("/activate/buddy");
}

/** Step 4: at least one buddy server, or skip for now (the panel then warns). */
export async function saveBuddyStep(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const db = crmDb();
  if (form.get("skip") === "1") {
    setBuddySkipped(db, true);
    audit(db, admin.email, "activation: skipped the buddy server", "server");
    advanceTo(db, "finish");
    redirect("/activate/finish");
  }
  const values = formValues(form);
  const parsed = BuddyInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  try {
    await addBuddy(await stateStore(), admin.email, parsed.data);
  } catch (error) {
    if (error instanceof SettingsError) return { errors: { [error.field]: error.message }, values };
    throw error;
  }
  setBuddySkipped(db, false);
  audit(db, admin.email, "add buddy", parsed.data.name, { address: parsed.data.address, fingerprint: parsed.data.fingerprint });
  advanceTo(db, "finish");
  redirect("/activate/finish");
}

/** Step 5: the customer domain and the shop's opening; the box is activated and the token dropped. */
export async function finishStep(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, ShopInput);
  if (!checked.ok) return checked.state;
  const { admin, data } = checked;
  const store = await stateStore();
  const db = crmDb();
  await saveShop(store, admin.email, data, true);
  ensureDefaultPlan(db);
  await dropActivationToken(store);
  audit(db, admin.email, "activation: box activated", "server", { customerDomain: data.customerDomain ?? null, signupsOpen: data.signupsOpen === "on" });
  redirect("/admin");
}
