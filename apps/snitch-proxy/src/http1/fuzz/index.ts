// The differential fuzz of the HTTP/1.1 parser against llhttp, for the soak command in bench/.
export { runFuzz, runCase, judge, describeFailure, escapeBytes, type FuzzKind, type FuzzSummary, type CaseResult } from "./run.ts";
export { CATEGORIES, type Category } from "./categories.ts";
export { available as llhttpAvailable } from "./llhttp.ts";
