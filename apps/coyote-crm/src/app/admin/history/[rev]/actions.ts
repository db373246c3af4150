"use server";
import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { shortRevision } from "../../../../lib/admin/format.ts";
import { RollbackInput } from "../../../../lib/admin/history.ts";
import { audit } from "../../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../../lib/auth.ts";
import { CSRF_FAILED, type FormState } from "../../../../lib/forms.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { authorOf, stateStore } from "../../../../lib/state.ts";

/**
 * Makes the specs what they were at a revision, as a new commit (the history is never rewritten),
 * then goes back to the history with a note of what changed.
 */
export async function rollbackAction(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  // Checked before git sees it: only hex, so nothing the form sends can be read as an option or a ref expression.
  const parsed = RollbackInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { message: `rolling back: ${parsed.error.issues[0]?.message ?? "no revision given"}` };
  const { revision } = parsed.data;
  let result;
  try {
    result = await (await stateStore()).rollback(revision, { author: authorOf(admin.email) });
  } catch (error) {
    return { message: `rolling back to ${shortRevision(revision)}: ${error instanceof Error ? error.message : String(error)}` };
  }
  audit(crmDb(), admin.email, "history.rollback", revision, { revision: result.revision, changed: result.changed });
  revalidatePath("/admin", "layout");
  const query = new URLSearchParams({ rolledBack: shortRevision(revision), revision: shortRevision(result.revision), changed: String(result.changed.length) });
  redirect(`/admin/history?${query.toString()}`);
}
