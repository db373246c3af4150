/** `@coyote/cli`: the `coyote` command line, importable for tests and for other tools. */
export { runCli } from "./program.ts";
export { readEnv, type CliEnv } from "./env.ts";
export { EXIT, CliError, type ExitCode } from "./errors.ts";
export type { Io } from "./io.ts";
