// Runs the differential fuzz: generates case after case from a seed, parses each with snitch-proxy's
// parser and with llhttp, compares, and counts agreements and categorised disagreements. Shared by
// the test (a few thousand cases) and the soak command (a million).
import { compare } from "./compare.ts";
import { classify, refusalOf, type Disagreement } from "./categories.ts";
import { requestCase, responseCase } from "./generate.ts";
import { llhttpParse } from "./llhttp.ts";
import { oursRequests, oursResponse } from "./ours.ts";
import type { Message } from "./outcome.ts";
import { Random, caseSeed } from "./random.ts";

/** Which parser is fuzzed. */
export type FuzzKind = "request" | "response";

/** One case and what came of it. */
export interface CaseResult {
  readonly index: number;
  readonly input: Buffer;
  /** "agree", a category name, or undefined for a failure. */
  readonly category: string | undefined;
  /** What is wrong, for a failure. */
  readonly problem?: string;
}

/** Runs case `index` of the run seeded with `seed`. */
export function runCase(kind: FuzzKind, seed: number, index: number): CaseResult {
  const random = new Random(caseSeed(seed, index));
  if (kind === "request") return judge(kind, requestCase(random), "GET", random, index);
  const generated = responseCase(random);
  return judge(kind, generated.input, generated.method, random, index);
}

/**
 * Parses `input` with both parsers (a request stream, or the answer to a `method` request) and
 * says whether they agree, in which category they part, or what is wrong.
 */
export function judge(kind: FuzzKind, input: Buffer, method: string, random: Random, index = 0): CaseResult {
  const ours = kind === "request" ? oursRequests(input, random) : oursResponse(input, method, random);
  const llhttp = llhttpParse(input, kind, method);
  const verdict = compare(ours, llhttp);
  if (verdict.kind === "agree") return { index, input, category: "agree" };
  if (verdict.kind === "differ") {
    const a = ours.messages[verdict.index] as Message;
    const b = llhttp.messages[verdict.index] as Message;
    return { index, input, category: undefined, problem: `both read message ${String(verdict.index)}, with a different ${verdict.field}: ours ${JSON.stringify(a[verdict.field as keyof Message])}, llhttp ${JSON.stringify(b[verdict.field as keyof Message])}` };
  }
  const reader = verdict.side === "ours" ? ours : llhttp;
  const message = reader.messages[verdict.index] as Message;
  const before = reader.messages.slice(0, verdict.index);
  const refusal = refusalOf(verdict.side === "ours" ? llhttp : ours);
  const disagreement: Disagreement = { kind, side: verdict.side, message, refusal, before, bytes: input.toString("latin1", before.at(-1)?.end ?? 0) };
  const category = classify(disagreement);
  if (category !== undefined) return { index, input, category: category.name };
  return { index, input, category: undefined, problem: `only ${verdict.side === "ours" ? "snitch-proxy" : "llhttp"} read message ${String(verdict.index)} (${JSON.stringify(message).slice(0, 300)}); the other said: ${refusal}` };
}

/** What a run found. */
export interface FuzzSummary {
  readonly kind: FuzzKind;
  readonly seed: number;
  readonly cases: number;
  /** Cases per outcome: "agree" and each category's name. */
  readonly counts: Map<string, number>;
  /** The first failures (unexplained disagreements), at most 10. */
  readonly failures: CaseResult[];
  readonly failed: number;
}

/** Runs `cases` cases from `seed`, calling `progress` every `every` cases. */
export function runFuzz(kind: FuzzKind, seed: number, cases: number, progress?: (done: number, summary: FuzzSummary) => void, every = 10_000): FuzzSummary {
  const summary = { kind, seed, cases: 0, counts: new Map<string, number>(), failures: [] as CaseResult[], failed: 0 };
  for (let index = 0; index < cases; index++) {
    const result = runCase(kind, seed, index);
    summary.cases++;
    if (result.category === undefined) {
      summary.failed++;
      if (summary.failures.length < 10) summary.failures.push(result);
    } else {
      summary.counts.set(result.category, (summary.counts.get(result.category) ?? 0) + 1);
    }
    if (progress !== undefined && (index + 1) % every === 0) progress(index + 1, summary);
  }
  return summary;
}

/** Bytes as readable text: printable ASCII as it is, the rest escaped (CR and LF as \r and \n). */
export function escapeBytes(input: Buffer): string {
  let out = "";
  for (const byte of input) {
    if (byte === 13) out += "\\r";
    else if (byte === 10) out += "\\n";
    else if (byte === 92) out += "\\\\";
    else if (byte >= 32 && byte < 127) out += String.fromCharCode(byte);
    else out += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** A failure as text: how to replay it, the input, and what is wrong. */
export function describeFailure(kind: FuzzKind, seed: number, failure: CaseResult): string {
  return `${kind} case ${String(failure.index)} (seed ${String(seed)}): ${failure.problem ?? ""}\n  input: "${escapeBytes(failure.input)}"`;
}
