import type { Metadata } from "next";

export const metadata: Metadata = { title: "Sign in required" };

/** What `unauthorized()` renders, with status 401. */
export default function Unauthorized() {
  return (
    <main className="narrow">
      <h1>Sign in required</h1>
      <p>
        This page is for signed-in users. <a href="/login">Sign in</a>
      </p>
    </main>
  );
}
