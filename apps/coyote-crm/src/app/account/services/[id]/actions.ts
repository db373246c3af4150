"use server";
import { revalidatePath } from "next/cache";
import { csrfValid, requireCustomer } from "../../../../lib/auth.ts";
import { CSRF_FAILED, formValues, type FormState } from "../../../../lib/forms.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { changeMail, type MailChangeKind } from "../../../../lib/shop/mail-accounts.ts";
import { stateStore } from "../../../../lib/state.ts";

/** One change of a service's mail (lib/shop/mail-accounts.ts checks and writes), then the page is drawn again. */
async function mailChange(kind: MailChangeKind, form: FormData): Promise<FormState> {
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const user = await requireCustomer();
  const values = formValues(form, ["csrf", "password", "confirm", "mailboxPassword", "mailboxConfirm"]);
  const result = await changeMail({ db: crmDb(), store: await stateStore(), user }, kind, Object.fromEntries(form));
  if (!result.ok) return { message: result.message, errors: result.errors, values };
  const service = values.service ?? "";
  revalidatePath(`/account/services/${encodeURIComponent(service)}`);
  return { ok: true, message: result.message };
}

/** Adds a mailbox with its own password. */
export async function addMailboxAction(_prev: FormState, form: FormData): Promise<FormState> {
  return mailChange("add-mailbox", form);
}

/** Gives a mailbox the customer added a new password. */
export async function setMailboxPasswordAction(_prev: FormState, form: FormData): Promise<FormState> {
  return mailChange("set-mailbox-password", form);
}

/** Removes a mailbox the customer added. */
export async function removeMailboxAction(_prev: FormState, form: FormData): Promise<FormState> {
  return mailChange("remove-mailbox", form);
}

/** Adds an alias that forwards to one of the service's mailboxes. */
export async function addAliasAction(_prev: FormState, form: FormData): Promise<FormState> {
  return mailChange("add-alias", form);
}

/** Removes an alias. */
export async function removeAliasAction(_prev: FormState, form: FormData): Promise<FormState> {
  return mailChange("remove-alias", form);
}
