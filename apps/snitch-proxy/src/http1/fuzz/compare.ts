// Compares what snitch-proxy's parser and llhttp made of the same bytes.
import type { Message, Outcome } from "./outcome.ts";

/** How two outcomes relate. */
export type Verdict =
  /** The same messages, field by field, up to where both stopped reading. */
  | { readonly kind: "agree" }
  /** Both read message `index`, differently: always a failure. */
  | { readonly kind: "differ"; readonly index: number; readonly field: string }
  /** Only `side` read message `index` (the other refused it or waits for more). */
  | { readonly kind: "one-accepts"; readonly side: "ours" | "llhttp"; readonly index: number };

const FIELDS = ["method", "target", "status", "version", "headers", "body", "end"] as const;

/** The first field in which two messages differ, or undefined. */
function difference(a: Message, b: Message): string | undefined {
  for (const field of FIELDS) {
    if (JSON.stringify(a[field]) !== JSON.stringify(b[field])) return field;
  }
  return undefined;
}

/** Compares message by message; the first message read by one parser only decides the rest. */
export function compare(ours: Outcome, llhttp: Outcome): Verdict {
  const common = Math.min(ours.messages.length, llhttp.messages.length);
  for (let i = 0; i < common; i++) {
    const field = difference(ours.messages[i] as Message, llhttp.messages[i] as Message);
    if (field !== undefined) return { kind: "differ", index: i, field };
  }
  if (ours.messages.length > common) return { kind: "one-accepts", side: "ours", index: common };
  if (llhttp.messages.length > common) return { kind: "one-accepts", side: "llhttp", index: common };
  return { kind: "agree" };
}
