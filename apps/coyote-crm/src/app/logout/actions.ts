"use server";
import { redirect } from "next/navigation";
import { clearSessionCookie, csrfValid } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import { deleteSession } from "../../lib/sessions.ts";

/** Signs out: the session ends on the server, not only in the browser. */
export async function logout(form: FormData): Promise<void> {
  if (!(await csrfValid(form))) redirect("/");
  deleteSession(crmDb(), await clearSessionCookie());
  redirect("/login");
}
