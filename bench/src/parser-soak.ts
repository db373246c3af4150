// bench/parser-soak: snitch-proxy's HTTP/1.1 parser against llhttp (node:http's parser) on a
// million generated request streams and a million upstream answers. The same differential fuzz as
// apps/snitch-proxy's test (http1/fuzz), only longer: every message both parsers read must be read
// alike, and every message only one reads must fall in a named category. It prints progress, then
// the count per category, and exits 1 with the inputs of any unexplained disagreement.
//
//   node --import tsx src/parser-soak.ts [--cases 1000000] [--seed 20261207] [--kind request|response|both]
import { parseArgs } from "node:util";
import { CATEGORIES, describeFailure, llhttpAvailable, runFuzz, type FuzzKind, type FuzzSummary } from "@coyote/snitch-proxy/parser-fuzz";

const { values } = parseArgs({ options: { cases: { type: "string", default: "1000000" }, seed: { type: "string", default: "20261207" }, kind: { type: "string", default: "both" } } });
const cases = Number(values.cases);
const seed = Number(values.seed);
if (!Number.isSafeInteger(cases) || cases <= 0) throw new Error(`--cases: a positive whole number, not ${values.cases}`);
if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`--seed: a whole number from 0 to 4294967295, not ${values.seed}`);
if (!["request", "response", "both"].includes(values.kind)) throw new Error(`--kind: request, response or both, not ${values.kind}`);
if (!llhttpAvailable) throw new Error("node:http's internal parser binding is not reachable on this Node: there is nothing to compare with");
const out = (line: string) => process.stdout.write(`${line}\n`);
const kinds: FuzzKind[] = values.kind === "both" ? ["request", "response"] : [values.kind as FuzzKind];

const every = Math.max(1, Math.min(100_000, Math.floor(cases / 10)));
const summaries: FuzzSummary[] = [];
for (const kind of kinds) {
  const started = performance.now();
  const summary = runFuzz(
    kind,
    seed,
    cases,
    (done, so) => {
      const seconds = (performance.now() - started) / 1000;
      out(`${kind}: ${done.toLocaleString("en")} / ${cases.toLocaleString("en")} cases, ${String(so.failed)} unexplained, ${seconds.toFixed(0)} s`);
    },
    every,
  );
  const seconds = (performance.now() - started) / 1000;
  out(`${kind}: ${summary.cases.toLocaleString("en")} cases in ${seconds.toFixed(0)} s (${((seconds * 1e6) / summary.cases).toFixed(0)} µs a case), seed ${String(seed)}`);
  for (const [name, count] of [...summary.counts].sort((a, b) => b[1] - a[1])) {
    const category = CATEGORIES.find((c) => c.name === name);
    const who = category === undefined ? "both read alike" : `only ${category.side === "ours" ? "snitch-proxy" : "llhttp"} reads`;
    out(`  ${String(count).padStart(9)}  ${name.padEnd(32)} ${who}`);
  }
  out(`  ${String(summary.failed).padStart(9)}  unexplained`);
  for (const failure of summary.failures) out(describeFailure(kind, seed, failure));
  summaries.push(summary);
}
process.exitCode = summaries.some((s) => s.failed > 0) ? 1 : 0;
