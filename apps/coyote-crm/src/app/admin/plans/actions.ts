"use server";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { audit } from "../../../lib/audit.ts";
import { checkAdminForm } from "../../../lib/admin-form.ts";
import type { FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { getPlan, PlanInput, priceText, savePlan } from "../../../lib/plans.ts";

/**
 * Creates or updates a plan. The form says which: creating with the id of an existing plan is
 * refused, so that a new plan never silently replaces one customers signed up for.
 */
export async function savePlanAction(_prev: FormState, form: FormData): Promise<FormState> {
  const checked = await checkAdminForm(form, PlanInput);
  if (!checked.ok) return checked.state;
  const { admin, data, values } = checked;
  const db = crmDb();
  const editing = form.get("editing") === data.id;
  const existing = getPlan(db, data.id);
  if (!editing && existing !== undefined) return { errors: { id: `a plan with id ${data.id} exists already; edit it from the list instead` }, values };
  if (editing && existing === undefined) return { message: `saving plan ${data.id}: it no longer exists; reload the page`, values };
  let saved;
  try {
    saved = savePlan(db, data);
  } catch (error) {
    return { message: error instanceof Error ? error.message : `saving plan ${data.id}: ${String(error)}`, values };
  }
  audit(db, admin.email, editing ? "plan.update" : "plan.create", saved.id, {
    name: saved.name,
    price: priceText(saved.priceCents),
    parts: [saved.web ? "web" : "", saved.mail ? "mail" : "", saved.xmpp ? "xmpp" : ""].filter((p) => p !== ""),
    active: saved.active,
    maxMailboxes: saved.maxMailboxes,
    maxAliases: saved.maxAliases,
  });
  revalidatePath("/admin", "layout");
  revalidatePath("/", "layout");
  // A new plan continues in its edit view, so that a second save updates it rather than clashing.
  if (!editing) redirect(`/admin/plans?${new URLSearchParams({ edit: saved.id, created: "1" }).toString()}`);
  return { ok: true, message: `Saved plan ${saved.name}.`, values };
}
