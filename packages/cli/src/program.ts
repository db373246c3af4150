import { Command, CommanderError } from "commander";
import { CoyoteError } from "@coyote/spec";
import { activationCommand } from "./commands/activation.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { logsCommand } from "./commands/logs.ts";
import { specCommands } from "./commands/spec.ts";
import { setupCommand } from "./commands/setup.ts";
import { statusCommand } from "./commands/status.ts";
import { testCommand } from "./commands/test.ts";
import { upCommands } from "./commands/up.ts";
import { updateCommand } from "./commands/update.ts";
import type { CliEnv } from "./env.ts";
import { EXIT, exitCodeFor } from "./errors.ts";
import type { Io } from "./io.ts";

/**
 * Runs the `coyote` command line.
 * @param args the arguments after the program name.
 * @param env the environment, from {@link readEnv}.
 * @param io where to write.
 * @param cliEntry the path of the CLI's entry script, which `coyote up` runs again for each component.
 * @returns the exit code (see EXIT).
 */
export async function runCli(args: readonly string[], env: CliEnv, io: Io, cliEntry: string): Promise<number> {
  const program = new Command("coyote")
    .description("Coyote, the self-hosting server appliance: run it, change its desired state, see what it does")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text.trimEnd()),
      writeErr: (text) => io.err(text.trimEnd()),
    });
  program.addHelpText("after", `
Exit codes: 0 ok, 1 failed, 2 wrong usage, 3 invalid input file, 4 not found, 5 state store busy, 6 something missing on this machine.
State folder: ${env.stateDir} (set COYOTE_STATE to use another).`);
  upCommands(program, env, io, cliEntry);
  activationCommand(program, env, io);
  specCommands(program, env, io);
  statusCommand(program, env, io);
  logsCommand(program, env, io);
  doctorCommand(program, env, io);
  testCommand(program, env, io);
  updateCommand(program, env, io);
  setupCommand(program, env, io);
  // Subcommands inherit the error handling and output of the program.
  for (const command of program.commands) {
    command.exitOverride().configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) });
    for (const sub of command.commands) sub.exitOverride().configureOutput({ writeOut: (text) => io.out(text.trimEnd()), writeErr: (text) => io.err(text.trimEnd()) });
  }
  try {
    await program.parseAsync([...args], { from: "user" });
    return EXIT.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; everything else commander refuses is wrong usage, which it has printed.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.help" || error.code === "commander.version") return EXIT.OK;
      if (error.code === "commander.executeSubCommandAsync") return EXIT.FAILED;
      return EXIT.USAGE;
    }
    const code = exitCodeFor(error);
    const message = error instanceof Error ? error.message : String(error);
    if (message !== "") {
      const prefix = error instanceof CoyoteError && code === EXIT.INVALID ? "invalid: " : "";
      io.err(`coyote: ${prefix}${message}`);
    }
    if (code === EXIT.FAILED && !(error instanceof CoyoteError) && error instanceof Error && error.name !== "CliError" && error.stack) {
      // An unexpected error: keep the trace, it is a bug to report.
      io.err(error.stack);
    }
    return code;
  }
}
