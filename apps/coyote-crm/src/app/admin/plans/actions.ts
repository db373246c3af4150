"use server";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { audit } from "../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../lib/auth.ts";
import { CSRF_FAILED, fieldErrors, formValues, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { getPlan, PlanInput, priceText, savePlan } from "../../../lib/plans.ts";

/**
 * Creates or updates a plan. The form says which: creating with the id of an existing plan is
 * refused, so that a new plan never silently replaces one customers signed up for.
 */
export async function savePlanAction(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const values = formValues(form);
  const parsed = PlanInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), values };
  const db = crmDb();
  const editing = form.get("editing") === parsed.data.id;
  const existing = getPlan(db, parsed.data.id);
  if (!editing && existing !== undefined) return { errors: { id: `a plan with id ${parsed.data.id} exists already; edit it from the list instead` }, values };
  if (editing && existing === undefined) return { message: `saving plan ${parsed.data.id}: it no longer exists; reload the page`, values };
  let saved;
  try {
    saved = savePlan(db, parsed.data);
  } catch (error) {
    return { message: error instanceof Error ? error.message : `saving plan ${parsed.data.id}: ${String(error)}`, values };
  }
  audit(db, admin.email, editing ? "plan.update" : "plan.create", saved.id, {
    name: saved.name,
    price: priceText(saved.priceCents),
    parts: [saved.web ? "web" : "", saved.mail ? "mail" : "", saved.xmpp ? "xmpp" : ""].filter((p) => p !== ""),
    active: saved.active,
  });
  revalidatePath("/admin", "layout");
  revalidatePath("/", "layout");
  // A new plan continues in its edit view, so that a second save updates it rather than clashing.
  if (!editing) redirect(`/admin/plans?${new URLSearchParams({ edit: saved.id, created: "1" }).toString()}`);
  return { ok: true, message: `Saved plan ${saved.name}.`, values };
}
