import type { Metadata } from "next";
import { csrfToken, requireCustomer } from "../../../lib/auth.ts";
import { PasswordForm } from "./PasswordForm.tsx";

/** The tab's title. */
export const metadata: Metadata = { title: "Change password" };

/** The customer's password: one for the panel, their mailboxes' own account and their chat account. */
export default async function PasswordPage() {
  await requireCustomer();
  return (
    <main className="medium">
      <p className="muted">
        <a href="/account">My services</a> / Password
      </p>
      <h1>Change password</h1>
      <p>
        One password signs you in here and to the mailbox and chat account your signup made. Changing it here changes it for all three; other sign-ins to this panel end.
        Mailboxes you added yourself keep their own passwords.
      </p>
      <PasswordForm csrf={await csrfToken()} />
    </main>
  );
}
