"use server";
import { revalidatePath } from "next/cache";
import { decisionOf, INBOX_DECISIONS_DIR, InboxDecision, type InboxRequest } from "@coyote/spec";
import { decideRequest, DecisionInput } from "../../../lib/admin/inbox.ts";
import { audit } from "../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../lib/auth.ts";
import { CSRF_FAILED, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { readInbox, stateStore } from "../../../lib/state.ts";

/**
 * Accepts or refuses a pending coyote request: the decision, who and when, goes to
 * `inbox-decisions/<file>` (the crm's own file; `inbox/<file>` is coyote-listener's).
 */
export async function decideInboxRequest(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const parsed = DecisionInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { message: `deciding a request: ${parsed.error.issues[0]?.message ?? "bad form"}` };
  const { file, decision } = parsed.data;
  const store = await stateStore();
  // The file is looked up among those the inbox lists, so a form cannot name any other file.
  const entry = (await readInbox(store)).find((e) => e.file === file);
  if (entry?.request === undefined) {
    revalidatePath("/admin", "layout");
    return { message: `deciding request ${file}: ${entry === undefined ? "it is no longer in the inbox" : "its file does not validate"}` };
  }
  let decided: InboxRequest;
  try {
    decided = decideRequest(entry.request, decision, admin.email, new Date());
    await store.writeJson(`${INBOX_DECISIONS_DIR}/${file}`, InboxDecision, decisionOf(decided));
  } catch (error) {
    revalidatePath("/admin", "layout");
    return { message: error instanceof Error ? error.message : `deciding request ${file}: ${String(error)}` };
  }
  audit(crmDb(), admin.email, decision === "accept" ? "inbox.accept" : "inbox.refuse", file, {
    id: decided.id,
    request: decided.request,
    from: decided.from.fingerprint,
    serviceId: decided.serviceId,
  });
  revalidatePath("/admin", "layout");
  return { ok: true, message: decision === "accept" ? "Accepted." : "Refused." };
}
