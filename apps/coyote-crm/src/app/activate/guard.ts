import { redirect } from "next/navigation";
import { reachedStep, stepOpen, WIZARD_STEPS, type WizardStepId } from "../../lib/activation.ts";
import { requireAdmin } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import type { SessionUser } from "../../lib/sessions.ts";

/** A wizard step after the first: the admin only, and not before the steps ahead of it are done. */
export async function openStep(step: WizardStepId): Promise<SessionUser> {
  const admin = await requireAdmin();
  const db = crmDb();
  if (!stepOpen(db, step)) redirect(WIZARD_STEPS.find((s) => s.id === reachedStep(db))?.path ?? "/activate");
  return admin;
}
