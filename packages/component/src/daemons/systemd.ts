/**
 * The daemons' systemd units, rendered from the same catalogue entries the daemon supervisor of
 * `coyote up` runs them from: the command line, the step before each start, the reload, the stop
 * signal and its grace, the user and the log file. A production box hands its daemons to systemd
 * with these units; what a daemon needs is written once, in {@link DAEMONS}.
 */
import { join } from "node:path";
import { DAEMON_PROGRAM_DIRS, findDaemonProgram, type DaemonDefinition, type DaemonPaths } from "./catalogue.ts";
import { lookupUser } from "./files.ts";
import { PASSAGE_TOOL, type PassageUser } from "./passage.ts";

/** How the units are rendered. */
export interface SystemdUnitOptions {
  /** Finds a program or tool by name; the catalogue's folders by default. */
  readonly program?: (name: string) => string | undefined;
  /** The unit names' prefix: `coyote-<daemon>.service` by default. */
  readonly prefix?: string;
  /** Finds a user's uid by name (the system's users by default): the passage entries name uids. */
  readonly uidOf?: (name: string) => number | undefined;
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

/** A command line as systemd reads it: every word quoted by {@link systemdWord}. */
export const commandLine = (program: string, args: readonly string[]) => [program, ...args].map(systemdWord).join(" ");

/** The first line of every unit Coyote renders: how `coyote units` tells its own files apart. */
export const RENDERED_HEADER = "# Rendered by Coyote from its catalogues: edits here are overwritten.";

/**
 * The sandbox every unit of the box gets: a read-only system except `writable`, no home folders,
 * a private /tmp and devices, no new privileges, the kernel's tunables, modules, logs and clock out
 * of reach, and only the address families a server needs. No `MemoryDenyWriteExecute`: V8's JIT
 * and Prosody's LuaJIT write code.
 * @param writable the folders the unit may write (`-` before a path: skipped when it does not exist).
 * @param options.namespaces the kinds of namespace the unit may make (`net`), none by default.
 */
export function sandboxLines(writable: readonly string[], options: { readonly namespaces?: string } = {}): string[] {
  return [
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    `ReadWritePaths=${writable.map((path) => (path.startsWith("-") ? `-${systemdWord(path.slice(1))}` : systemdWord(path))).join(" ")}`,
    "ProtectHome=yes",
    "PrivateTmp=yes",
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictRealtime=yes",
    `RestrictNamespaces=${options.namespaces ?? "yes"}`,
    "LockPersonality=yes",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    "SystemCallArchitectures=native",
  ];
}

/** Refuses a rendered line that would end itself early or add a directive. */
export function checkUnitLines(what: string, lines: readonly string[]): void {
  for (const line of lines) {
    // A path from the state folder ends up in a directive: it must not add a line or a directive.
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f]/.test(line)) throw new TypeError(`rendering the ${what} unit: a value has a control character: ${JSON.stringify(line)}`);
  }
}

/** The `setfacl` entries of a daemon's passage (`u:<uid>:--x`), by uid. */
function passageEntries(definition: DaemonDefinition, uidOf: (name: string) => number | undefined): string {
  return definition.passage
    .map((user: PassageUser) => {
      const uid = typeof user === "number" ? user : uidOf(user);
      if (uid === undefined) throw new Error(`rendering the ${definition.name} unit: the system user ${String(user)} does not exist (the Debian packages ${definition.packages.join(", ")} make it)`);
      return `u:${String(uid)}:--x`;
    })
    .join(",");
}

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
  const uidOf = options.uidOf ?? ((name: string) => lookupUser(name)?.uid);
  // `+`: the grant runs with full privileges, outside the sandbox and before the daemon's user.
  const passage = definition.passage.length === 0 ? [] : [`ExecStartPre=+${commandLine(need(PASSAGE_TOOL.program), ["-m", passageEntries(definition, uidOf), "--", paths.stateDir])}`];
  const lines = [
    RENDERED_HEADER,
    "[Unit]",
    `Description=Coyote: ${definition.summary}`,
    "After=network-online.target",
    "Wants=network-online.target",
    `ConditionPathExists=${literalPath(definition.configFile(paths))}`,
    "",
    "[Service]",
    "Type=simple",
    ...(definition.user === undefined ? [] : [`User=${definition.user}`]),
    ...passage,
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
    ...sandboxLines([paths.stateDir, ...(definition.writes ?? []).map((path) => `-${path}`)]),
    "",
    "[Install]",
    "WantedBy=coyote.target",
    "",
  ];
  checkUnitLines(definition.name, lines);
  return { name: `${options.prefix ?? "coyote-"}${definition.name}.service`, text: lines.join("\n") };
}

/**
 * The two path units that stand in for the daemon supervisor's watch under systemd: one starts
 * the daemon once the minion has written its configuration (a unit whose condition failed at boot
 * is not tried again by itself), one reloads it when a watched file changes (a renewed
 * certificate, a changed `main.cf`), through a one-shot service that reloads it only if it runs.
 * @returns `<prefix><daemon>.path`, `<prefix><daemon>-reload.path` and `<prefix><daemon>-reload.service`.
 */
export function renderDaemonPathUnits(definition: DaemonDefinition, paths: DaemonPaths, options: Pick<SystemdUnitOptions, "prefix"> = {}): SystemdUnit[] {
  const prefix = options.prefix ?? "coyote-";
  const service = `${prefix}${definition.name}.service`;
  const start = [
    RENDERED_HEADER,
    "[Unit]",
    `Description=Coyote: start ${definition.name} once its configuration is written`,
    "",
    "[Path]",
    `PathExists=${literalPath(definition.configFile(paths))}`,
    `Unit=${service}`,
    "",
    "[Install]",
    "WantedBy=coyote.target",
    "",
  ];
  const reloadPath = [
    RENDERED_HEADER,
    "[Unit]",
    `Description=Coyote: reload ${definition.name} when its files change`,
    "",
    "[Path]",
    ...definition.watch(paths).map((path) => `PathChanged=${literalPath(path)}`),
    `Unit=${prefix}${definition.name}-reload.service`,
    "",
    "[Install]",
    "WantedBy=coyote.target",
    "",
  ];
  const reloadService = [
    RENDERED_HEADER,
    "[Unit]",
    `Description=Coyote: reload ${definition.name} if it runs`,
    // Written files come in bursts (the minion writes a daemon's files one after another): the
    // default start limit would fail this unit, and its path unit with it, for good.
    "StartLimitIntervalSec=0",
    "",
    "[Service]",
    "Type=oneshot",
    `ExecStart=/bin/systemctl --no-block try-reload-or-restart ${service}`,
    "",
  ];
  for (const lines of [start, reloadPath, reloadService]) checkUnitLines(definition.name, lines);
  return [
    { name: `${prefix}${definition.name}.path`, text: start.join("\n") },
    { name: `${prefix}${definition.name}-reload.path`, text: reloadPath.join("\n") },
    { name: `${prefix}${definition.name}-reload.service`, text: reloadService.join("\n") },
  ];
}
