/**
 * The daemons' systemd units, rendered from the same catalogue entries the daemon supervisor of
 * `coyote up` runs them from: the command line, the step before each start, the reload, the stop
 * signal and its grace, the user and the log file. A production box hands its daemons to systemd
 * with these units; what a daemon needs is written once, in {@link DAEMONS}.
 */
import { join } from "node:path";
import { DAEMON_PROGRAM_DIRS, findDaemonProgram, type DaemonDefinition, type DaemonPaths } from "./catalogue.ts";

/** How the units are rendered. */
export interface SystemdUnitOptions {
  /** Finds a program or tool by name; the catalogue's folders by default. */
  readonly program?: (name: string) => string | undefined;
  /** The unit names' prefix: `coyote-<daemon>.service` by default. */
  readonly prefix?: string;
}

/** One rendered unit. */
export interface SystemdUnit {
  /** The unit's file name, `coyote-knot.service`. */
  readonly name: string;
  /** Its text. */
  readonly text: string;
}

/**
 * Quotes one word of a command line as systemd reads it: in double quotes, with `\` and `"`
 * escaped, and `$` and `%` doubled so that neither an environment variable nor a specifier is
 * expanded. A value cannot end the quoted word or add a line: a control character is refused.
 * @throws TypeError for a value with a control character.
 */
export function systemdWord(value: string): string {
  // A code point below 0x20 or DEL would end the line or confuse the parser.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new TypeError(`a systemd command-line word has a control character: ${JSON.stringify(value)}`);
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("$", "$$$$").replaceAll("%", "%%")}"`;
}

/** A path in a directive that takes one as it is: `%` doubled, so that no specifier is expanded. */
const literalPath = (path: string) => path.replaceAll("%", "%%");

const commandLine = (program: string, args: readonly string[]) => [program, ...args].map(systemdWord).join(" ");

/**
 * Renders the unit of one daemon. Its output goes to `logs/<daemon>.log`, as under `coyote up`;
 * systemd stops the whole control group with the catalogue's signal, then SIGKILL after its grace.
 * @throws Error when the daemon's program or a tool it needs is not installed.
 */
export function renderSystemdUnit(definition: DaemonDefinition, paths: DaemonPaths, options: SystemdUnitOptions = {}): SystemdUnit {
  const find = options.program ?? ((name: string) => findDaemonProgram(name, DAEMON_PROGRAM_DIRS));
  const need = (name: string) => {
    const found = find(name);
    if (found === undefined) throw new Error(`rendering the ${definition.name} unit: ${name} is not installed (Debian packages ${definition.packages.join(", ")})`);
    return found;
  };
  const start = commandLine(need(definition.program), definition.args(paths));
  const reload = definition.reload.kind === "signal" ? `/bin/kill -${definition.reload.signal.replace(/^SIG/, "")} $MAINPID` : commandLine(need(definition.reload.tool), definition.reload.args(paths));
  const log = join(paths.logsDir, `${definition.name}.log`);
  const lines = [
    "# Rendered by Coyote from its daemons' catalogue: edits here are overwritten.",
    "[Unit]",
    `Description=Coyote: ${definition.summary}`,
    "After=network-online.target",
    "Wants=network-online.target",
    `ConditionPathExists=${literalPath(definition.configFile(paths))}`,
    "",
    "[Service]",
    "Type=simple",
    ...(definition.user === undefined ? [] : [`User=${definition.user}`]),
    ...(definition.prepare ? [`ExecStartPre=${commandLine(need(definition.prepare.tool), definition.prepare.args(paths))}`] : []),
    `ExecStart=${start}`,
    `ExecReload=${reload}`,
    `KillSignal=${definition.stop.signal}`,
    "KillMode=control-group",
    `TimeoutStopSec=${String(Math.ceil(definition.stop.graceMs / 1000))}`,
    "Restart=on-failure",
    "RestartSec=1",
    `StandardOutput=append:${literalPath(log)}`,
    "StandardError=inherit",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ];
  for (const line of lines) {
    // A path from the state folder ends up in a directive: it must not add a line or a directive.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(line)) throw new TypeError(`rendering the ${definition.name} unit: a value has a control character: ${JSON.stringify(line)}`);
  }
  return { name: `${options.prefix ?? "coyote-"}${definition.name}.service`, text: lines.join("\n") };
}
