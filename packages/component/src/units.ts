/**
 * The production box's systemd units (docs/PRODUCTION.md, "Units"): one per component, from the
 * profiles below, and the daemons' units from their catalogue ({@link renderSystemdUnit}), all
 * wanted by `coyote.target`. `coyote units` writes them; `coyote up` runs the same components and
 * daemons under its own supervisor instead.
 */
import { join } from "node:path";
import { COMPONENT_NAMES, type ComponentName } from "./component.ts";
import { DAEMONS, daemonPaths, type DaemonDefinition } from "./daemons/catalogue.ts";
import { RENDERED_HEADER, checkUnitLines, commandLine, renderDaemonPathUnits, renderSystemdUnit, sandboxLines, type SystemdUnit, type SystemdUnitOptions } from "./daemons/systemd.ts";

/** The system user (and group) the components run as, who owns the state folder. */
export const APPLIANCE_USER = "coyote";

/**
 * How one component runs under systemd. Every component runs as the appliance's user, so that
 * every file in the state folder is that user's, as under `coyote up`; the two that manage the
 * machine hold the capabilities for what only root may otherwise do, and nothing else.
 */
export interface ComponentUnitProfile {
  /** The capabilities it holds (bounding and ambient sets), besides CAP_NET_BIND_SERVICE for low ports. */
  readonly capabilities: readonly string[];
  /** What the capabilities are for. */
  readonly because?: string;
  /** Groups it joins besides its own, when they exist on the machine (`docker` for the activator). */
  readonly groups: readonly string[];
  /** The kinds of namespace it may make (`RestrictNamespaces=`); none when not given. */
  readonly namespaces?: string;
}

/** The components' profiles: what each may do, and nothing more. */
export const COMPONENT_UNIT_PROFILES: Readonly<Record<ComponentName, ComponentUnitProfile>> = {
  minion: {
    capabilities: ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"],
    because: "it gives mailboxes, DKIM keys and Prosody's files to their daemons' users, writes into their folders, and runs Postfix's own command as root to reload it",
    groups: [],
  },
  "docker-activator": {
    capabilities: ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE"],
    because: "it gives each process unit a network namespace of its own and runs it as the unit's user",
    groups: ["docker"],
    namespaces: "net",
  },
  "snitch-proxy": { capabilities: [], groups: [] },
  "coyote-listener": { capabilities: [], groups: [] },
  "coyote-crm": { capabilities: [], groups: [] },
};

/** One `NAME=value` word of `Environment=`: quoted, `%` doubled (no specifier), `$` kept (none is expanded there). */
function environmentWord(assignment: string): string {
  return `"${assignment.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("%", "%%")}"`;
}

/** Where an installed box keeps its release, state and Node.js. */
export interface InstallLayout {
  /** The state folder, `/var/lib/coyote`. */
  readonly stateDir: string;
  /** The running release, `/opt/coyote/current` (a symlink, so a switch needs no new units). */
  readonly currentDir: string;
  /** The Node.js binary the components run on. */
  readonly node: string;
}

/** What the units are rendered for. */
export interface BoxUnitOptions extends SystemdUnitOptions {
  /** The components that run (those that are built). */
  readonly components: readonly ComponentName[];
  /** The daemons the box runs (installed, and wanted by the server spec). */
  readonly daemons: readonly DaemonDefinition[];
  /** Whether a component binds ports below 1024: it then keeps CAP_NET_BIND_SERVICE, and only it. */
  readonly bindsLowPorts: (name: ComponentName) => boolean;
  /** Whether a group exists on the machine (an absent `docker` group is left out). */
  readonly groupExists: (name: string) => boolean;
  /** Node's flags for a component's process (its V8 settings, as `coyote up` gives them); none when not given. */
  readonly nodeFlags?: (name: ComponentName) => readonly string[];
}

/** The unit of a component: `coyote-<name>.service`, without saying coyote twice (`coyote-crm.service`). */
export function componentUnitName(name: ComponentName): string {
  return `${name.startsWith("coyote-") ? name : `coyote-${name}`}.service`;
}

/**
 * Renders the unit of one component: `node <current>/dist/component.mjs <name>` as the
 * appliance's user with its profile's capabilities, in the common sandbox, writing only the state
 * folder.
 */
export function renderComponentUnit(name: ComponentName, layout: InstallLayout, options: Pick<BoxUnitOptions, "bindsLowPorts" | "groupExists" | "nodeFlags">): SystemdUnit {
  const profile = COMPONENT_UNIT_PROFILES[name];
  const bind = options.bindsLowPorts(name) ? ["CAP_NET_BIND_SERVICE"] : [];
  const capabilities = [...profile.capabilities, ...bind];
  const groups = profile.groups.filter((group) => options.groupExists(group));
  const lines = [
    RENDERED_HEADER,
    "[Unit]",
    `Description=Coyote: ${name}`,
    "After=network-online.target",
    "Wants=network-online.target",
    // The minion writes what the others read; each component starts after the ones before it.
    ...(name === "minion" ? [] : ["After=coyote-minion.service"]),
    "PartOf=coyote.target",
    "",
    "[Service]",
    "Type=simple",
    `User=${APPLIANCE_USER}`,
    `Group=${APPLIANCE_USER}`,
    ...(groups.length > 0 ? [`SupplementaryGroups=${groups.join(" ")}`] : []),
    ...(profile.because === undefined ? [] : [`# Capabilities: ${profile.because}.`]),
    "UMask=0077",
    `Environment=${[`COYOTE_STATE=${layout.stateDir}`, `COYOTE_HOME=${layout.currentDir}`, "NODE_ENV=production"].map(environmentWord).join(" ")}`,
    `WorkingDirectory=${layout.stateDir.replaceAll("%", "%%")}`,
    // The build's entry of one component, which loads only that component's package.
    `ExecStart=${commandLine(layout.node, [...(options.nodeFlags?.(name) ?? []), join(layout.currentDir, "dist", "component.mjs"), name])}`,
    "KillSignal=SIGTERM",
    "TimeoutStopSec=30",
    "Restart=on-failure",
    "RestartSec=2",
    `CapabilityBoundingSet=${capabilities.join(" ")}`,
    ...(capabilities.length > 0 ? [`AmbientCapabilities=${capabilities.join(" ")}`] : []),
    "RestrictSUIDSGID=yes",
    ...sandboxLines([layout.stateDir], profile.namespaces === undefined ? {} : { namespaces: profile.namespaces }),
    "SystemCallFilter=@system-service",
    // A call outside the filter fails instead of killing the process.
    "SystemCallErrorNumber=EPERM",
    "",
    "[Install]",
    "WantedBy=coyote.target",
    "",
  ];
  checkUnitLines(name, lines);
  return { name: componentUnitName(name), text: lines.join("\n") };
}

/** `coyote.target`: the whole box, started at boot; stopping it stops every unit. */
export function renderTarget(): SystemdUnit {
  const lines = [RENDERED_HEADER, "[Unit]", "Description=Coyote: the whole box", "After=network-online.target", "Wants=network-online.target", "", "[Install]", "WantedBy=multi-user.target", ""];
  return { name: "coyote.target", text: lines.join("\n") };
}

/**
 * Every unit of the box: the target, the components' units and, for each daemon, its service and
 * its two path units, sorted by name.
 * @throws Error when a daemon's program or a user its passage names is missing.
 */
export function renderBoxUnits(layout: InstallLayout, options: BoxUnitOptions): SystemdUnit[] {
  const paths = daemonPaths(layout.stateDir);
  const units = [renderTarget()];
  for (const name of COMPONENT_NAMES) if (options.components.includes(name)) units.push(renderComponentUnit(name, layout, options));
  for (const definition of DAEMONS) {
    if (!options.daemons.includes(definition)) continue;
    units.push(renderSystemdUnit(definition, paths, options), ...renderDaemonPathUnits(definition, paths, options));
  }
  return units.sort((a, b) => a.name.localeCompare(b.name));
}
