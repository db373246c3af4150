import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { ActionButton } from "../../../../components/admin/ActionButton.tsx";
import { formatTime, plural, shortRevision } from "../../../../lib/admin/format.ts";
import { diffCounts, diffLines, isUnknownRevision, Revision, type DiffLine } from "../../../../lib/admin/history.ts";
import { csrfToken, requireAdmin } from "../../../../lib/auth.ts";
import { stateStore } from "../../../../lib/state.ts";
import { rollbackAction } from "./actions.ts";

/** The page's title in the browser tab, named after what it shows. */
export async function generateMetadata({ params }: { params: Promise<{ rev: string }> }): Promise<Metadata> {
  return { title: `Revision ${shortRevision((await params).rev)}` };
}

/** How far back the page looks for the revision's author and message. */
const METADATA_DEPTH = 1000;

const LINE_CLASS: Partial<Record<DiffLine["kind"], string>> = { add: "diff-add", del: "diff-del" };
// The hunk headers get their own colour so the eye finds them; globals.css has none for them.
const HUNK_STYLE = { color: "#79c0ff" };

/** One commit of the specs history: what it changed, and the button that rolls back to it. */
export default async function RevisionPage({ params }: { params: Promise<{ rev: string }> }) {
  await requireAdmin();
  const parsed = Revision.safeParse((await params).rev);
  if (!parsed.success) notFound();
  const rev = parsed.data;
  const store = await stateStore();
  let diff: string;
  try {
    // With one revision the store diffs it against its parent, or against nothing for the first commit.
    diff = await store.diff(rev);
  } catch (error) {
    if (isUnknownRevision(error)) notFound();
    throw error;
  }
  const entry = (await store.history(undefined, METADATA_DEPTH)).find((e) => e.revision.startsWith(rev));
  const lines = diffLines(diff);
  const counts = diffCounts(lines);
  const full = entry?.revision ?? rev;
  return (
    <>
      <h1>Revision {shortRevision(full)}</h1>
      {entry === undefined ? null : (
        <dl className="card">
          <dt className="muted">Message</dt>
          <dd>{entry.message}</dd>
          <dt className="muted">Author</dt>
          <dd>
            {entry.author.name} &lt;{entry.author.email}&gt;
          </dd>
          <dt className="muted">Date</dt>
          <dd>{formatTime(entry.date)}</dd>
          <dt className="muted">Commit</dt>
          <dd>
            <code>{entry.revision}</code>
          </dd>
        </dl>
      )}
      <h2>Changes</h2>
      <p className="muted">
        {plural(counts.added, "line")} added, {counts.removed} removed.
      </p>
      {lines.length === 0 ? (
        <p className="muted">This commit changed no spec file.</p>
      ) : (
        <pre data-testid="diff">
          {lines.map((line, i) => (
            // A diff's lines have no identity but their position, which never changes for a commit.
            <span key={i} className={LINE_CLASS[line.kind]} style={line.kind === "hunk" ? HUNK_STYLE : undefined}>
              {line.text}
              {"\n"}
            </span>
          ))}
        </pre>
      )}
      <h2>Roll back</h2>
      <p>Rolling back makes every spec what it was right after this commit, as a new commit; nothing in the history is lost, so a rollback can itself be rolled back.</p>
      <ActionButton action={rollbackAction} csrf={await csrfToken()} fields={{ revision: full }} label="Roll back to this revision" pendingLabel="Rolling back…" className="danger" />
      <p>
        <a href="/admin/history">Back to the history</a>
      </p>
    </>
  );
}
