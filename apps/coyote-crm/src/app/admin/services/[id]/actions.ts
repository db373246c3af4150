"use server";
import { revalidatePath } from "next/cache";
import { z } from "zod";
import { csrfValid, requireAdmin } from "../../../../lib/auth.ts";
import { vouchForDomain } from "../../../../lib/admin/vouch.ts";
import { CSRF_FAILED, type FormState } from "../../../../lib/forms.ts";
import { crmDb } from "../../../../lib/instance.ts";
import { stateStore } from "../../../../lib/state.ts";

const VouchInput = z.object({ serviceId: z.string().min(1).max(63), domain: z.string().min(1).max(253) });

/** Vouches for a customer's domain (lib/admin/vouch.ts): the box serves it without waiting for its TXT proof. */
export async function vouchDomain(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const parsed = VouchInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { message: "vouching for a domain: no service or domain given" };
  const result = await vouchForDomain({ db: crmDb(), store: await stateStore() }, admin.email, parsed.data.serviceId, parsed.data.domain);
  if (!result.ok) return { message: result.message };
  revalidatePath(`/admin/services/${encodeURIComponent(parsed.data.serviceId)}`);
  return { ok: true, message: "Vouched." };
}
