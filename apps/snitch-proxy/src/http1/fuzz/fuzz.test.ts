// The differential fuzz of snitch-proxy's HTTP/1.1 parser against llhttp (node:http's parser):
// a few thousand generated request streams and upstream answers, each parsed by both. Any message
// both read must be read alike (method, target, status, version, fields, body, where it ends);
// any message only one reads must fall in a named category of categories.ts. The soak command
// (bench: npm run parser-soak) runs the same for a million cases.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CATEGORIES } from "./categories.ts";
import { compare } from "./compare.ts";
import { available } from "./llhttp.ts";
import type { Message, Outcome } from "./outcome.ts";
import { describeFailure, runFuzz, type FuzzKind } from "./run.ts";

/** Cases per parser: a few seconds each. */
const CASES = 4000;
/** A fixed seed: the same cases on every run, so a failure is replayed by its index. */
const SEED = 20_261_207;

/** Runs the fuzz and fails with the inputs of the unexplained disagreements. */
function fuzz(kind: FuzzKind): void {
  const summary = runFuzz(kind, SEED, CASES);
  assert.equal(summary.failed, 0, `${String(summary.failed)} unexplained disagreements between snitch-proxy and llhttp:\n${summary.failures.map((f) => describeFailure(kind, SEED, f)).join("\n")}`);
  const agree = summary.counts.get("agree") ?? 0;
  // Not vacuous: most cases are read by both (alike), and several categories are met.
  assert.ok(agree > CASES * 0.8, `only ${String(agree)} of ${String(CASES)} cases agreed`);
  assert.ok(summary.counts.size >= 8, `only ${String(summary.counts.size - 1)} categories were met`);
  for (const name of summary.counts.keys()) assert.ok(name === "agree" || CATEGORIES.some((c) => c.name === name), name);
}

describe("snitch-proxy's HTTP/1.1 parser against llhttp", () => {
  it("can reach llhttp through node:http's parser binding on this Node", () => {
    assert.equal(available, true, "node:http's internal HTTPParser binding is gone: the fuzz needs another way to reach llhttp");
  });

  it(`frames ${String(CASES)} generated request streams as llhttp does, or differs only as categorised`, () => {
    fuzz("request");
  });

  it(`frames ${String(CASES)} generated upstream answers as llhttp does, or differs only as categorised`, () => {
    fuzz("response");
  });
});

describe("compare", () => {
  const message: Message = { method: "POST", target: "/", status: 0, version: "1.1", headers: [["content-length", "2"]], body: "hi", end: 40 };
  const outcome = (...messages: Message[]): Outcome => ({ messages, stop: { kind: "clean" } });

  it("finds a message read differently in any compared field", () => {
    for (const change of [{ body: "ho" }, { end: 41 }, { method: "PUT" }, { target: "/x" }, { version: "1.0" }, { headers: [["content-length", "3"]] as [string, string][] }]) {
      const verdict = compare(outcome(message), outcome({ ...message, ...change }));
      assert.equal(verdict.kind, "differ", JSON.stringify(change));
    }
  });

  it("finds the first message only one side read", () => {
    assert.deepEqual(compare(outcome(message, message), outcome(message)), { kind: "one-accepts", side: "ours", index: 1 });
    assert.deepEqual(compare(outcome(), outcome(message)), { kind: "one-accepts", side: "llhttp", index: 0 });
    assert.deepEqual(compare(outcome(message), outcome(message)), { kind: "agree" });
  });
});
