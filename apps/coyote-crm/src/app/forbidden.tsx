import type { Metadata } from "next";

export const metadata: Metadata = { title: "Not allowed" };

/** What `forbidden()` renders, with status 403. */
export default function Forbidden() {
  return (
    <main className="narrow">
      <h1>Not allowed</h1>
      <p>
        Your account may not see this page. <a href="/">Back to the start page</a>
      </p>
    </main>
  );
}
