import type { Metadata } from "next";

export const metadata: Metadata = { title: "Not found" };

/** What `notFound()` and unknown paths render, with status 404. */
export default function NotFound() {
  return (
    <main className="narrow">
      <h1>Not found</h1>
      <p>
        There is nothing here. <a href="/">Back to the start page</a>
      </p>
    </main>
  );
}
