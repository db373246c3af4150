/**
 * Hides secret values in a unified diff of spec files. Specs written before credentials, backend
 * environment values and alarm webhooks moved to `secrets/` still hold them in old revisions of
 * the history, which is never rewritten; the panel's history view shows those revisions as
 * diffs, so their values are replaced by a marker before any diff leaves the store.
 */

/** What a hidden value is shown as. */
export const HIDDEN_VALUE = "(secret: hidden)";

const HASH_LINE = /^([-+ ]\s*"passwordHash": )"(?:[^"\\]|\\.)*"(,?)$/;
const BLOCK_OPEN = /^[-+ ](\s*)"(env|webhooks)": ([[{])$/;
const STRING_ENTRY = /^([-+ ]\s*(?:"(?:[^"\\]|\\.)*": )?)"(?:[^"\\]|\\.)*"(,?)$/;

/**
 * The diff with every `passwordHash` value, every value of an `env` object and every URL of a
 * `webhooks` list replaced by {@link HIDDEN_VALUE}. Other lines are unchanged, so the diff still
 * shows that a value changed, and where.
 */
export function redactSpecDiff(diff: string): string {
  const out: string[] = [];
  // The indentation and closing bracket of the env/webhooks block being read, if any.
  let block: { indent: string; close: string } | undefined;
  for (const line of diff.split("\n")) {
    if (block !== undefined) {
      const body = line.slice(1);
      if (body === `${block.indent}${block.close}` || body === `${block.indent}${block.close},` || line.startsWith("@@") || line.startsWith("diff ")) {
        block = undefined;
        out.push(line);
        continue;
      }
      out.push(line.replace(STRING_ENTRY, `$1"${HIDDEN_VALUE}"$2`));
      continue;
    }
    const open = BLOCK_OPEN.exec(line);
    if (open !== null) {
      block = { indent: open[1] ?? "", close: open[3] === "{" ? "}" : "]" };
      out.push(line);
      continue;
    }
    out.push(line.replace(HASH_LINE, `$1"${HIDDEN_VALUE}"$2`));
  }
  return out.join("\n");
}

/**
 * Cuts a unified diff made with whole-file context (so that {@link redactSpecDiff} sees every
 * block from its opening line) back to `context` lines around each change, as git shows it.
 */
export function trimDiffContext(diff: string, context = 3): string {
  const out: string[] = [];
  const lines = diff.split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    const header = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$/.exec(line);
    if (header === null) {
      out.push(line);
      i++;
      continue;
    }
    const body: string[] = [];
    for (i++; i < lines.length && /^[-+ \\]/.test(lines[i] ?? ""); i++) body.push(lines[i] ?? "");
    out.push(...rehunk(body, Number(header[1]), Number(header[2]), header[3] ?? "", context));
  }
  return out.join("\n");
}

/** Splits one hunk's lines into hunks with at most `context` unchanged lines around changes. */
function rehunk(body: readonly string[], oldStart: number, newStart: number, tail: string, context: number): string[] {
  const changed = body.map((line) => line.startsWith("+") || line.startsWith("-") || line.startsWith("\\"));
  const out: string[] = [];
  let oldLine = oldStart;
  let newLine = newStart;
  const positions = body.map((line) => {
    const at = { oldLine, newLine };
    if (line.startsWith(" ")) {
      oldLine++;
      newLine++;
    } else if (line.startsWith("-")) oldLine++;
    else if (line.startsWith("+")) newLine++;
    return at;
  });
  let k = 0;
  while (k < body.length) {
    const first = changed.indexOf(true, k);
    if (first === -1) break;
    const start = Math.max(k, first - context);
    let end = first;
    // Extend over changes whose unchanged gap is short enough to share one hunk.
    for (let j = first; j < body.length; j++) {
      if (changed[j] === true) end = j;
      else if (j - end > 2 * context) break;
    }
    const stop = Math.min(body.length, end + context + 1);
    const slice = body.slice(start, stop);
    const at = positions[start] ?? { oldLine: oldStart, newLine: newStart };
    const oldCount = slice.filter((l) => l.startsWith(" ") || l.startsWith("-")).length;
    const newCount = slice.filter((l) => l.startsWith(" ") || l.startsWith("+")).length;
    out.push(`@@ -${oldCount === 0 ? at.oldLine - 1 : at.oldLine},${oldCount} +${newCount === 0 ? at.newLine - 1 : at.newLine},${newCount} @@${tail}`, ...slice);
    k = stop;
  }
  return out;
}
