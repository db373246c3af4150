// The audit log's details as the admin reads them. The details are stored as JSON text; an entry
// written by an older or broken writer must still show, so nothing here throws.

/** An entry's detail as an object; text that is not a JSON object comes back as `{ text }`. */
export function parseDetail(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    return { value };
  } catch {
    return { text };
  }
}

/** An entry's detail on one line: `key: value` pairs, nested values as compact JSON. */
export function detailText(detail: Readonly<Record<string, unknown>>): string {
  return Object.entries(detail)
    .map(([key, value]) => `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    .join(", ");
}
