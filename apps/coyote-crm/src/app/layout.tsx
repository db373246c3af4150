import type { Metadata } from "next";
import type { ReactNode } from "react";
import { SignOut } from "../components/SignOut.tsx";
import { csrfToken, currentUser } from "../lib/auth.ts";
import { readServer, stateStore } from "../lib/state.ts";
import "./globals.css";

export const metadata: Metadata = { title: { template: "%s · Coyote", default: "Coyote" } };

// Every page depends on who is signed in and on the state folder: nothing is prerendered.
export const dynamic = "force-dynamic";

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUser();
  const server = await readServer(await stateStore());
  return (
    <html lang="en">
      <body>
        <header className="topbar">
          <a href="/" className="brand">
            {server.activated ? server.name : "Coyote"}
          </a>
          <nav aria-label="Account">
            {user === undefined && !server.activated ? null : user === undefined ? (
              <>
                <a href="/#plans">Plans</a>
                <a href="/signup">Sign up</a>
                <a href="/login">Sign in</a>
              </>
            ) : (
              <>
                {user.role === "admin" ? <a href="/admin">Panel</a> : <a href="/account">My services</a>}
                <span className="muted">{user.email}</span>
                <SignOut csrf={await csrfToken()} />
              </>
            )}
          </nav>
        </header>
        {children}
      </body>
    </html>
  );
}
