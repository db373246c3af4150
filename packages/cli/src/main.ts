// The entry point of the `coyote` command (run by ./coyote with Node 24 and tsx).
import { readProcessEnv } from "./env.ts";
import { processIo } from "./io.ts";
import { runCli } from "./program.ts";

const env = readProcessEnv();
process.exitCode = await runCli(process.argv.slice(2), env, processIo(), import.meta.filename);
