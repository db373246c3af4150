// The entry point of one component's process, as `coyote up` runs each from the build
// (`node dist/component.mjs <name>`, tooling/bundle): `coyote run <name>` without the rest of the
// command line. It loads only the named component's package, where the whole CLI would load all
// five (and their dependencies) into every process.
import { COMPONENT_NAMES, isRunnable, runAlone, type ComponentDefinition, type ComponentName } from "@coyote/component";
import { readProcessEnv } from "./env.ts";
import { EXIT } from "./errors.ts";

/** Each component's package, loaded only when that component runs here. */
const COMPONENT_LOADERS = {
  minion: async () => (await import("@coyote/minion")).component,
  "docker-activator": async () => (await import("@coyote/docker-activator")).component,
  "snitch-proxy": async () => (await import("@coyote/snitch-proxy")).component,
  "coyote-listener": async () => (await import("@coyote/coyote-listener")).component,
  "coyote-crm": async () => (await import("@coyote/coyote-crm")).component,
} satisfies Record<ComponentName, () => Promise<ComponentDefinition>>;

const isName = (name: string | undefined): name is ComponentName => (COMPONENT_NAMES as readonly (string | undefined)[]).includes(name);

/** Runs the component named by `args[0]` until SIGTERM; returns the process's exit code. */
async function runComponentMain(args: readonly string[], stateDir: string, say: (line: string) => void): Promise<number> {
  const name = args[0];
  if (args.length !== 1 || !isName(name)) {
    say(`coyote: usage: component.mjs <name>, one of ${COMPONENT_NAMES.join(", ")} (given: ${JSON.stringify(args.join(" ").slice(0, 200))})`);
    return EXIT.USAGE;
  }
  const definition = await COMPONENT_LOADERS[name]();
  if (definition.name !== name) {
    say(`coyote: the package of ${name} defines the component ${definition.name}`);
    return EXIT.FAILED;
  }
  if (!isRunnable(definition)) {
    say(`coyote: ${name} is not built yet (${definition.plannedIn ?? "a later version"})`);
    return EXIT.MISSING;
  }
  return runAlone(definition, { stateDir });
}

process.exitCode = await runComponentMain(process.argv.slice(2), readProcessEnv().stateDir, (line) => process.stderr.write(`${line}\n`));
