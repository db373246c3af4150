// The entry point of the `coyote` command (run by ./coyote with Node 24 and tsx).
import { readEnv } from "./env.ts";
import { processIo } from "./io.ts";
import { runCli } from "./program.ts";

const env = readEnv(process.env, process.stdout.isTTY);
process.exitCode = await runCli(process.argv.slice(2), env, processIo, import.meta.filename);
