/**
 * Which units a production box runs, and writing them: only the files whose text changed, and
 * the units Coyote rendered before that are no longer wanted removed (a daemon left out, a
 * component gone). Files without Coyote's header are never touched.
 */
import { readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { COMPONENT_NAMES, DAEMONS, RENDERED_HEADER, findDaemonProgram, isRunnable, renderBoxUnits, type ComponentName, type DaemonDefinition, type SystemdUnit } from "@coyote/component";
import { nodeFlagsFor } from "../commands/up.ts";
import { COMPONENTS } from "../components.ts";
import { fsyncDir, writeFileAtomic, type ServerSpec } from "@coyote/spec";

/** The daemons the installer was told to leave out. */
export interface DaemonChoices {
  /** Postfix, Dovecot and the DKIM signer (`--no-mail`). */
  readonly mail: boolean;
  /** Prosody (`--no-xmpp`). */
  readonly xmpp: boolean;
}

const MAIL_DAEMONS = new Set(["postfix", "dovecot", "opendkim"]);

/**
 * The daemons a box runs: installed, wanted by its server spec (Knot only with the `knot`
 * backend) and not left out.
 */
export function boxDaemons(server: ServerSpec, choices: DaemonChoices, find: (program: string) => string | undefined = (p) => findDaemonProgram(p)): DaemonDefinition[] {
  return DAEMONS.filter((definition) => {
    if (definition.name === "knot" && server.dns.backend !== "knot") return false;
    if (MAIL_DAEMONS.has(definition.name) && !choices.mail) return false;
    if (definition.name === "prosody" && !choices.xmpp) return false;
    return find(definition.program) !== undefined;
  });
}

const portOf = (hostPort: string) => Number(/:(\d+)$/.exec(hostPort)?.[1] ?? "0");

/** Whether a component binds a port below 1024 under this server spec (it then keeps CAP_NET_BIND_SERVICE). */
export function bindsLowPorts(server: ServerSpec): (name: ComponentName) => boolean {
  return (name) => {
    switch (name) {
      case "snitch-proxy":
        return server.ports.http < 1024 || server.ports.https < 1024;
      case "minion":
        // The built-in DNS server runs inside the minion; Knot binds its own.
        return server.dns.backend === "builtin" && server.dns.listen.some((l) => portOf(l) < 1024);
      case "coyote-crm":
        return server.ports.panel < 1024;
      default:
        return false;
    }
  };
}

/** What {@link writeUnits} did. */
export interface UnitsWritten {
  readonly written: readonly string[];
  readonly unchanged: readonly string[];
  readonly removed: readonly string[];
}

/** Whether a unit file name is one Coyote renders. */
const OURS = /^coyote[a-z0-9-]*\.(service|path|target)$/;

/**
 * Writes the units into `dir` (0644, each atomically), removes the ones Coyote rendered before
 * that are not in `units`, and says which it wrote, kept and removed.
 */
export async function writeUnits(dir: string, units: readonly SystemdUnit[]): Promise<UnitsWritten> {
  const written: string[] = [];
  const unchanged: string[] = [];
  const removed: string[] = [];
  for (const unit of units) {
    const text = await readFile(join(dir, unit.name), "utf8").catch(() => undefined);
    if (text === unit.text) {
      unchanged.push(unit.name);
      continue;
    }
    await writeFileAtomic(join(dir, unit.name), unit.text, { mode: 0o644 });
    written.push(unit.name);
  }
  const wanted = new Set(units.map((u) => u.name));
  for (const name of (await readdir(dir)).sort()) {
    if (!OURS.test(name) || wanted.has(name)) continue;
    const text = await readFile(join(dir, name), "utf8").catch(() => "");
    if (!text.startsWith(RENDERED_HEADER)) continue;
    await unlink(join(dir, name));
    removed.push(name);
  }
  if (removed.length > 0) await fsyncDir(dir);
  return { written, unchanged, removed };
}

/** Whether a group exists on this machine (`getent group`). */
export function groupExists(name: string): boolean {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) return false;
  try {
    execFileSync("getent", ["group", name], { stdio: "ignore", timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** What the units of an installed box are rendered from besides its server spec. */
export interface InstalledUnitsOptions extends DaemonChoices {
  /** The state folder. */
  readonly stateDir: string;
  /** The running release's link, `/opt/coyote/current`. */
  readonly current: string;
  /** The Node.js binary. */
  readonly node: string;
}

/** The units of an installed box, as `coyote setup` writes them and `coyote doctor` expects them. */
export function installedUnits(server: ServerSpec, options: InstalledUnitsOptions): SystemdUnit[] {
  const components = COMPONENTS.filter(isRunnable).map((c) => c.name).filter((name): name is ComponentName => (COMPONENT_NAMES as readonly string[]).includes(name));
  const daemons = boxDaemons(server, options);
  return renderBoxUnits({ stateDir: options.stateDir, currentDir: options.current, node: options.node }, { components, daemons, bindsLowPorts: bindsLowPorts(server), groupExists, nodeFlags: nodeFlagsFor });
}
