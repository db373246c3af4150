/**
 * `@coyote/spec`: the schema of every on-disk contract (docs/ARCHITECTURE.md, "On disk") and the state store
 * over `COYOTE_STATE` that reads and writes them safely.
 */
export * from "./errors.ts";
export * from "./primitives.ts";
export * from "./specs.ts";
export * from "./domains.ts";
export * from "./mail-names.ts";
export * from "./domain-proof.ts";
export * from "./runtime.ts";
export * from "./runtime-paths.ts";
export * from "./local-ca-files.ts";
export * from "./activator-client.ts";
export * from "./validate.ts";
export * from "./atomic.ts";
export * from "./executables.ts";
export * from "./privileges.ts";
export * from "./lock.ts";
export * from "./store.ts";
export * from "./last-good.ts";
export * from "./sites.ts";
export * from "./alarm-log.ts";
export * from "./credentials.ts";
export * from "./scram.ts";
export * from "./listener-stats.ts";
export * from "./inbox-decisions.ts";
export * from "./env-secrets.ts";
export * from "./webhook-secrets.ts";
