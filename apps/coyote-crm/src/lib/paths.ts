// The path a request is decided on. Next.js routes on the percent-decoded path, so the gate must
// decide on the same one, or `/%61dmin` would pass as "not /admin" and be served as /admin.

/**
 * Whether text holds a C0 or C1 control character, DEL, a space, or a Unicode line or paragraph
 * separator: nothing a browser puts in a URL unencoded, and what some read as nothing at all.
 */
export function hasControlOrSpace(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) return true;
  }
  return false;
}

/** A path the gate can decide on, or why it cannot be read. */
export type NormalisedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

// Encoded characters that would change how the path splits or reads once decoded.
const FORBIDDEN_ENCODED = /%(?:2f|5c|00|0[1-9a-f]|1[0-9a-f]|7f|25)/i;

/**
 * Decodes and normalises a request target's path: percent-decoding (once; an encoded `%`, `/`,
 * `\` or control character is refused, so no later decoding can change the answer), dot segments
 * resolved, repeated slashes collapsed. A backslash, a control character, malformed UTF-8 or a
 * `..` above the root is refused: no browser sends them, and servers disagree on what they mean.
 * @param target the request target (`req.url`), with or without a query.
 */
export function normalisePath(target: string): NormalisedPath {
  const raw = target.split("?", 1)[0] ?? "";
  if (!raw.startsWith("/")) return { ok: false, reason: "the request target is not a path" };
  if (raw.includes("\\") || hasControlOrSpace(raw)) return { ok: false, reason: "the path holds a backslash, a space or a control character" };
  if (FORBIDDEN_ENCODED.test(raw)) return { ok: false, reason: "the path encodes a slash, a backslash, a percent sign or a control character" };
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return { ok: false, reason: "the path has a malformed percent-encoding" };
  }
  if (hasControlOrSpace(decoded.replace(/ /g, "x"))) return { ok: false, reason: "the path holds a control character" };
  const out: string[] = [];
  const segments = decoded.split("/").slice(1);
  for (const [i, segment] of segments.entries()) {
    if (segment === "." || (segment === "" && i < segments.length - 1)) continue;
    if (segment === "..") {
      if (out.pop() === undefined) return { ok: false, reason: "the path climbs above the root" };
      continue;
    }
    out.push(segment);
  }
  return { ok: true, path: `/${out.join("/")}` };
}

/** A decoded path encoded again for Next.js, which then routes on exactly what the gate decided. */
export function encodePath(path: string): string {
  return path.split("/").map((segment) => encodeURIComponent(segment).replace(/%40/g, "@").replace(/%3A/gi, ":")).join("/");
}
