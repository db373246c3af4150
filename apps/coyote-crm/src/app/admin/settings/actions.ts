"use server";
import { revalidatePath } from "next/cache";
import { HeartbeatInput, keyChanges, saveHeartbeat } from "../../../lib/admin/settings.ts";
import { audit } from "../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../lib/auth.ts";
import { checkAdminForm } from "../../../lib/admin-form.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { AlarmsInput, KeysInput, saveAlarms, saveKeys, saveShop, ShopInput } from "../../../lib/settings.ts";
import { stateStore } from "../../../lib/state.ts";

function failed(context: string, error: unknown, values?: Record<string, string>): FormState {
  const message = `${context}: ${error instanceof Error ? error.message : String(error)}`;
  return values === undefined ? { message } : { message, values };
}

/** Stores where alarms go (e-mail addresses and webhooks). */
export async function saveAlarmsAction(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, AlarmsInput);
  if (!checked.ok) return checked.state;
  const { admin, data, values } = checked;
  try {
    await saveAlarms(await stateStore(), admin.email, data);
  } catch (error) {
    return failed("saving the alarm destinations", error, values);
  }
  // Webhook URLs often carry a token in their path, so the log counts them instead of naming them.
  audit(crmDb(), admin.email, "settings.alarms", "server", { emails: data.emails.length, webhooks: data.webhooks.length });
  revalidatePath("/admin", "layout");
  return { ok: true, message: "Saved the alarm destinations.", values: { emails: data.emails.join("\n"), webhooks: data.webhooks.join("\n") } };
}

/** Stores, replaces or removes the provider API keys; an empty field keeps the stored key. */
export async function saveKeysAction(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  // The keys are never sent back to the browser, not even after a mistake.
  const values = formValues(form, ["csrf", "vultr", "namecheapKey", "removeVultr", "removeNamecheap"]);
  const parsed = KeysInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  const changes = keyChanges(parsed.data);
  try {
    await saveKeys(await stateStore(), admin.email, parsed.data);
  } catch (error) {
    // The store's errors name files and fields, never the secret's content.
    return failed("saving the provider keys", error, values);
  }
  audit(crmDb(), admin.email, "settings.keys", "server", changes);
  revalidatePath("/admin", "layout");
  const said = Object.entries(changes)
    .filter(([, change]) => change !== "kept")
    .map(([provider, change]) => `${provider === "vultr" ? "Vultr" : "Namecheap"} key ${change}`);
  return { ok: true, message: said.length === 0 ? "Nothing to change: the stored keys are kept." : `${said.join(", ")}.` };
}

/** Sets the customer domain and opens or closes signups. */
export async function saveShopAction(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, ShopInput);
  if (!checked.ok) return checked.state;
  const { admin, data, values } = checked;
  try {
    await saveShop(await stateStore(), admin.email, data);
  } catch (error) {
    return failed("saving the shop settings", error, values);
  }
  const open = data.signupsOpen === "on";
  audit(crmDb(), admin.email, "settings.shop", "server", { customerDomain: data.customerDomain ?? null, signupsOpen: open });
  revalidatePath("/", "layout");
  return { ok: true, message: open ? "Saved: signups are open." : "Saved: signups are closed.", values };
}

/** Sets how often buddies exchange heartbeats and how many missed ones mean down. */
export async function saveHeartbeatAction(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, HeartbeatInput);
  if (!checked.ok) return checked.state;
  const { admin, data, values } = checked;
  try {
    await saveHeartbeat(await stateStore(), admin.email, data);
  } catch (error) {
    return failed("saving the heartbeat settings", error, values);
  }
  audit(crmDb(), admin.email, "settings.heartbeat", "server", data);
  revalidatePath("/admin", "layout");
  return { ok: true, message: "Saved the heartbeat settings.", values };
}
