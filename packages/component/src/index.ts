/**
 * `@coyote/component`: the contract every daemon implements (`start()` → running component), and
 * the supervisor that runs them all in one process or each in its own (docs/ARCHITECTURE.md, "Components").
 */
export * from "./component.ts";
export * from "./supervisor.ts";
export * from "./run.ts";
export * from "./stats.ts";
export * from "./daemons/catalogue.ts";
export * from "./daemons/probes.ts";
export * from "./daemons/state-file.ts";
export * from "./daemons/systemd.ts";
export * from "./daemons/opendkim.ts";
export * from "./daemons/supervisor.ts";
export * from "./daemons/passage.ts";
export { lookupUser } from "./daemons/files.ts";
export * from "./units.ts";
