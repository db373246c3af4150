import type { Metadata } from "next";
import { csrfToken } from "../../lib/auth.ts";
import { LoginForm } from "./LoginForm.tsx";

export const metadata: Metadata = { title: "Sign in" };

export default async function LoginPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  const params = await searchParams;
  const next = typeof params.next === "string" ? params.next : undefined;
  return (
    <main className="narrow">
      <h1>Sign in</h1>
      <LoginForm csrf={await csrfToken()} next={next} />
      <p className="muted">
        No account yet? <a href="/signup">Sign up</a>.
      </p>
    </main>
  );
}
