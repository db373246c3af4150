import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { adminExists, reachedStep, WIZARD_STEPS } from "../../lib/activation.ts";
import { csrfToken, currentUser } from "../../lib/auth.ts";
import { crmDb } from "../../lib/instance.ts";
import { AdminForm } from "./forms.tsx";
import { Steps } from "./Steps.tsx";

export const metadata: Metadata = { title: "Activate" };

export default async function ActivatePage() {
  const db = crmDb();
  const user = await currentUser();
  const reached = reachedStep(db);
  if (user?.role === "admin" && reached !== "admin") redirect(WIZARD_STEPS.find((s) => s.id === reached)?.path ?? "/activate/alarms");
  return (
    <main className="medium">
      <h1>Activate this box</h1>
      <Steps current="admin" />
      {adminExists(db) ? (
        <p className="notice warn">
          The admin account is made. <a href="/login?next=/activate/alarms">Sign in</a> to finish the activation.
        </p>
      ) : (
        <>
          <p>
            This box is not activated yet: until it is, this page is all it serves. Enter the one-time token that <code>coyote up</code> printed and make the
            admin account.
          </p>
          <AdminForm csrf={await csrfToken()} />
        </>
      )}
    </main>
  );
}
