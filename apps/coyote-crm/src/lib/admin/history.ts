// The specs history as the admin browses it: revisions checked before any git call, and unified
// diffs split into lines the page colours.
import { z } from "zod";

/** A revision from a URL or a form: 7 to 40 hex digits (the history links use the full 40). */
export const Revision = z
  .string()
  .trim()
  .regex(/^[0-9a-fA-F]{7,40}$/, { error: "a revision is 7 to 40 hexadecimal digits" })
  .transform((rev) => rev.toLowerCase());

/** The form of the "Roll back to this revision" button. */
export const RollbackInput = z.object({ revision: Revision });

/** One line of a unified diff and what it is. */
export interface DiffLine {
  readonly kind: "add" | "del" | "hunk" | "meta" | "context";
  readonly text: string;
}

/** Splits a unified diff into lines, telling additions and deletions from file headers and hunks. */
export function diffLines(diff: string): DiffLine[] {
  const text = diff.endsWith("\n") ? diff.slice(0, -1) : diff;
  if (text === "") return [];
  return text.split("\n").map((line): DiffLine => {
    // File headers first: "+++ b/x" and "--- a/x" are not additions or deletions.
    if (line.startsWith("+++ ") || line.startsWith("--- ") || line.startsWith("diff ") || line.startsWith("index ") || /^(new|deleted) file mode /.test(line) || line.startsWith("\\ ")) {
      return { kind: "meta", text: line };
    }
    if (line.startsWith("@@")) return { kind: "hunk", text: line };
    if (line.startsWith("+")) return { kind: "add", text: line };
    if (line.startsWith("-")) return { kind: "del", text: line };
    return { kind: "context", text: line };
  });
}

/** How many lines a diff adds and removes. */
export function diffCounts(lines: readonly DiffLine[]): { added: number; removed: number } {
  return { added: lines.filter((l) => l.kind === "add").length, removed: lines.filter((l) => l.kind === "del").length };
}

/**
 * Whether an error is the store's "no such revision" (a mistyped or foreign commit id), which a
 * page answers with 404. Told by its code, not its class, so that it holds across module copies.
 */
export function isUnknownRevision(error: unknown): boolean {
  return typeof error === "object" && error !== null && "code" in error && error.code === "STORE_ERR_UNKNOWN_REVISION";
}
