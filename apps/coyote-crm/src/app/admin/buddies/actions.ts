"use server";
import { revalidatePath } from "next/cache";
import { z } from "zod";
import { Fingerprint } from "@coyote/spec";
import { audit } from "../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../lib/auth.ts";
import { checkAdminForm } from "../../../lib/admin-form.ts";
import { CSRF_FAILED, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { addBuddy, BuddyInput, removeBuddy, SettingsError } from "../../../lib/settings.ts";
import { readServer, stateStore } from "../../../lib/state.ts";

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Adds a buddy server to the server spec (one commit). */
export async function addBuddyAction(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, BuddyInput);
  if (!checked.ok) return checked.state;
  const { admin, data, values } = checked;
  try {
    await addBuddy(await stateStore(), admin.email, data);
  } catch (error) {
    if (error instanceof SettingsError) return { errors: { [error.field]: error.message }, values };
    return { message: `adding buddy ${data.name}: ${messageOf(error)}`, values };
  }
  audit(crmDb(), admin.email, "buddy.add", data.name, { address: data.address, fingerprint: data.fingerprint });
  revalidatePath("/admin", "layout");
  return { ok: true, message: `Added buddy ${data.name}.` };
}

const RemoveInput = z.object({ fingerprint: Fingerprint });

/** Removes a buddy server from the server spec (one commit). */
export async function removeBuddyAction(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const parsed = RemoveInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { message: "removing a buddy: not a server fingerprint" };
  const store = await stateStore();
  const buddy = (await readServer(store)).buddies.find((b) => b.fingerprint === parsed.data.fingerprint);
  if (buddy === undefined) {
    revalidatePath("/admin", "layout");
    return { message: "removing a buddy: it is already gone" };
  }
  try {
    await removeBuddy(store, admin.email, buddy.fingerprint);
  } catch (error) {
    return { message: `removing buddy ${buddy.name}: ${messageOf(error)}` };
  }
  audit(crmDb(), admin.email, "buddy.remove", buddy.name, { address: buddy.address, fingerprint: buddy.fingerprint });
  revalidatePath("/admin", "layout");
  return { ok: true, message: `Removed buddy ${buddy.name}.` };
}
