import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { setFlagsFromString } from "node:v8";
import { Option, type Command } from "commander";
import { DAEMONS, DaemonSupervisor, PASSAGE_TOOL, Supervisor, findDaemonProgram, isRunnable, runAlone } from "@coyote/component";
import { createLogger, logFileFor } from "@coyote/log";
import { SNITCH_PROXY_NODE_FLAGS } from "@coyote/snitch-proxy";
import { ACTIVATION_SECRET, ServerSpec, StateStore, specPath } from "@coyote/spec";
import { COMPONENTS, findComponent } from "../components.ts";
import { activationInfo, activationToken } from "./activation.ts";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import { table, type Io } from "../io.ts";
import { aptInstall, onPath } from "../apt.ts";


/** Runs `turbo run build` over the workspace; output goes to stderr so stdout stays for results. */
async function build(env: CliEnv, io: Io, command = "up"): Promise<void> {
  const turbo = join(env.home, "node_modules", ".bin", "turbo");
  const code = await new Promise<number>((resolve) => {
    const child = spawn(turbo, ["run", "build", "--output-logs=errors-only"], { cwd: env.home, stdio: ["ignore", 2, 2], env: { ...env.processEnv } });
    child.once("error", () => resolve(127));
    child.once("exit", (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new CliError(`${command}: the build failed (turbo run build exited with ${code}; its output is above)`);
  io.err("coyote: build done");
}

/**
 * V8 flags of a component's process (and, set at run time, of `coyote up`'s own): V8 favours
 * memory over speed. Left to its defaults, V8 grows a process's young generation to tens of MB
 * while it starts (the panel's Next.js start most of all) and keeps it while the process idles:
 * the panel idled at 174 MB PSS, 52 MB with this flag; the minion and docker-activator 15-25 MB
 * less each (bench/memory, docs/BENCHMARKS.md).
 */
export const COMPONENT_NODE_FLAGS: readonly string[] = ["--optimize-for-size"];

/** Node's flags for one component's process: snitch-proxy's own, which serve its latency, or {@link COMPONENT_NODE_FLAGS}. */
export function nodeFlagsFor(name: string): readonly string[] {
  return name === "snitch-proxy" ? SNITCH_PROXY_NODE_FLAGS : COMPONENT_NODE_FLAGS;
}

/**
 * The entry of a component's process in the bundle `npm run build` writes (tooling/bundle):
 * `node dist/component.mjs <name>` runs as `coyote run <name>` does, loading only that component.
 */
export function builtEntry(home: string): string {
  return join(home, "dist", "component.mjs");
}

/** How `coyote up` runs each component's process, and what it says about it. */
export interface ChildCommand {
  readonly command: string;
  readonly args: readonly string[];
  /** `built` runs the bundle; `sources` runs the TypeScript sources through tsx. */
  readonly from: "built" | "sources";
}

/**
 * The command `coyote up` runs each component with (the component's name is appended): the built
 * JavaScript, which needs no compiler in every process, whenever it is there; the TypeScript
 * sources, through this process's own loader, only when the build was skipped and there is none,
 * or when asked for (`fromSources`: a source just edited runs without a build).
 * @throws CliError when the build ran and left no bundle.
 */
export async function childCommand(env: CliEnv, cliEntry: string, options: { readonly built: boolean; readonly fromSources?: boolean; readonly execArgv?: readonly string[] }): Promise<ChildCommand> {
  const entry = builtEntry(env.home);
  const found = options.fromSources !== true && (await stat(entry).then((s) => s.isFile(), () => false));
  if (found) return { command: process.execPath, args: [entry], from: "built" };
  if (options.built) throw new CliError(`up: the build left no ${entry} (tooling/bundle writes it)`);
  // This process may itself run from the build: the sources then come with tsx's loader, as ./coyote runs them.
  const sources = cliEntry.endsWith(".ts") ? [...(options.execArgv ?? process.execArgv), cliEntry] : ["--import", join(env.home, "node_modules", "tsx", "dist", "loader.mjs"), join(env.home, "packages", "cli", "src", "main.ts")];
  return { command: process.execPath, args: [...sources, "run"], from: "sources" };
}

interface UpOptions {
  oneProcess?: boolean;
  fromSources?: boolean;
  build: boolean;
  /** The build was made just before, by ./coyote, which then runs this command from it. */
  built?: boolean;
  install: boolean;
}

/**
 * Installs the Debian packages of the box's daemons whose programs are missing, when running as
 * root on a machine with apt-get (as `coyote test` installs what the tests need). Debian's own
 * instances of those daemons are not started: the box runs its own, from the state folder.
 */
export async function installDaemons(env: CliEnv, io: Io, options: { readonly policyRcD?: string; readonly findProgram?: (name: string) => string | undefined } = {}): Promise<void> {
  const find = options.findProgram ?? ((name: string) => findDaemonProgram(name));
  const missing = DAEMONS.filter((d) => find(d.program) === undefined);
  // setfacl gives the daemons' users their passage through the state folder.
  const passage = find(PASSAGE_TOOL.program) === undefined ? [PASSAGE_TOOL.package] : [];
  if (missing.length === 0 && passage.length === 0) return;
  const packages = [...new Set([...missing.flatMap((d) => d.packages), ...passage])];
  if (process.getuid?.() !== 0 || !(await onPath("apt-get", env.processEnv.PATH ?? ""))) {
    const what = [...missing.map((d) => d.name), ...(passage.length > 0 ? [PASSAGE_TOOL.program] : [])];
    io.err(`coyote: ${what.join(", ")} not installed; the daemons that need them do not run until then (as root: apt-get install ${packages.join(" ")})`);
    return;
  }
  io.err(`coyote: installing the Debian packages of the box's daemons: ${packages.join(" ")}`);
  if (!(await aptInstall(env, io, packages, { startServices: false, ...(options.policyRcD === undefined ? {} : { policyRcD: options.policyRcD }) }))) {
    io.err(`coyote: installing ${packages.join(" ")} failed (apt-get's output is above); the daemons that are missing do not run`);
  }
}

/** Adds `coyote build`, `coyote up` and `coyote run`. */
export function upCommands(program: Command, env: CliEnv, io: Io, cliEntry: string): void {
  program
    .command("build")
    .description("build the appliance as `coyote up` does first: the bundle in dist/ and the panel")
    .action(async () => {
      await build(env, io, "build");
    });
  program
    .command("up")
    .description("build and start the whole appliance; prints the panel URL and the one-time activation token")
    .option("--one-process", "run every component inside this one process (easy to debug)")
    .option("--no-build", "skip the build step")
    .option("--from-sources", "run each component from the TypeScript sources through tsx, even when a build is there")
    .option("--no-install", "do not install the Debian packages of missing daemons (done as root by default)")
    .addOption(new Option("--built", "the build was just made (./coyote builds, then runs `up` from the build)").hideHelp())
    .action(async (options: UpOptions) => {
      // This process is started by ./coyote or a unit, with no say in its flags: it takes them now,
      // before the heap grows (the flag is read by the garbage collector as it runs).
      for (const flag of COMPONENT_NODE_FLAGS) setFlagsFromString(flag);
      io.err(`coyote: Node ${process.versions.node}, state in ${env.stateDir}`);
      if (options.build && options.built !== true) await build(env, io);
      const store = await StateStore.open(env.stateDir);
      const specs = await store.listSpecs();
      io.out(`state: ${env.stateDir} (${specs.length} spec${specs.length === 1 ? "" : "s"}, history in specs/.git)`);
      const token = await activationToken(store);
      const runnable = COMPONENTS.filter(isRunnable);
      const crm = runnable.find((c) => c.name === "coyote-crm");
      const server = await store.readJson(specPath("server"), ServerSpec);
      const panelPort = server?.ports.panel ?? 3000;
      io.out(crm ? `panel: http://127.0.0.1:${panelPort}/` : `panel: not there yet (coyote-crm arrives with ${findComponent("coyote-crm")?.plannedIn ?? "a later version"})`);
      if (token) io.out(`activation token: ${token} (one-time; kept in ${store.path(`secrets/${ACTIVATION_SECRET}`)} until the box is activated)`);
      else io.out("activation: done; log in to the panel as the admin");
      // The panel on the box's own name, as a production box serves it (coyote activation says more).
      if (crm) io.out(`panel on the box's hostname: ${(await activationInfo(store)).url} (through snitch-proxy, once the name resolves here)`);
      io.out("components:");
      for (const line of table(COMPONENTS.map((c) => [`  ${c.name}`, isRunnable(c) ? "starting" : `not built yet (${c.plannedIn ?? "a later version"})`]))) io.out(line);
      if (runnable.length === 0) {
        io.out("nothing to run yet: no component is built. The state folder is ready; coyote status shows it.");
        return;
      }
      const child = options.oneProcess ? undefined : await childCommand(env, cliEntry, { built: options.build, fromSources: options.fromSources === true });
      const built = relative(env.home, builtEntry(env.home));
      if (child?.from === "built") {
        // With --no-build the build may be older than the sources: its time tells.
        const builtAt = await stat(builtEntry(env.home)).then((s) => s.mtime.toISOString().slice(0, 16).replace("T", " "), () => "?");
        io.err(`coyote: components run from the build, ${built} (built ${builtAt} UTC${options.build ? "" : "; --no-build: sources changed since are not in it"})`);
      }
      if (child?.from === "sources") io.err(`coyote: ${options.fromSources === true ? "--from-sources" : `no build in ${built}`}: components run from the TypeScript sources through tsx (slower to start, more memory; npm run build makes it)`);
      const logger = createLogger({ component: "supervisor", file: logFileFor(env.stateDir, "supervisor") });
      const supervisor = new Supervisor(runnable, {
        stateDir: env.stateDir,
        logger,
        mode: options.oneProcess ? "one-process" : "processes",
        ...(child ? { spawnCommand: { command: child.command, args: child.args, nodeFlags: nodeFlagsFor } } : {}),
      });
      await supervisor.start();
      if (options.install) await installDaemons(env, io);
      // The daemons come after the minion, which writes their configurations; one that is not
      // configured yet starts as soon as the minion writes its file.
      const daemons = new DaemonSupervisor({ stateDir: env.stateDir, logger });
      await daemons.start();
      io.out("daemons:");
      for (const line of table(daemons.states().map((d) => [`  ${d.name}`, d.state === "running" ? `running, pid ${String(d.pid)}` : d.state, d.detail ?? ""]))) io.out(line);
      io.out(`running ${runnable.map((c) => c.name).join(", ")} (${options.oneProcess ? "in one process" : "each in its own process"}); Ctrl-C stops`);
      // Stops on Ctrl-C, on SIGTERM, and when the reader of its output is gone (`coyote up | head -3`).
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
        io.closed?.addEventListener("abort", () => resolve(), { once: true });
        if (io.closed?.aborted) resolve();
      });
      io.err("coyote: stopping");
      await supervisor.stop();
      await daemons.stop();
      await logger.close();
    });

  program
    .command("run")
    .description("run one component alone in the foreground (how `coyote up` runs each in its own process)")
    .argument("<component>", COMPONENTS.map((c) => c.name).join(", "))
    .action(async (name: string) => {
      const definition = findComponent(name);
      if (!definition) throw new CliError(`run: no component "${name}" (one of ${COMPONENTS.map((c) => c.name).join(", ")})`, EXIT.USAGE);
      if (!isRunnable(definition)) throw new CliError(`run: ${name} is not built yet (${definition.plannedIn ?? "a later version"})`, EXIT.MISSING);
      const code = await runAlone(definition, { stateDir: env.stateDir });
      if (code !== 0) throw new CliError(`run: ${name} stopped with an error (see coyote logs --component ${name})`);
    });
}
