import { existsSync } from "node:fs";
import { DAEMONS, daemonPaths, findDaemonProgram, readDaemonStates, type DaemonRunState } from "@coyote/component";
import { formatDuration } from "./io.ts";

/** One of the box's daemons as `coyote status` and `coyote doctor` report it. */
export interface DaemonReport {
  /** The daemon's name (`knot`, `postfix`, ...). */
  readonly name: string;
  /** What it does, or `stopped` when no `coyote up` supervises the daemons. */
  readonly state: DaemonRunState;
  /** Pid and uptime, the last exit and next start, or what is missing. */
  readonly detail: string;
  /** The Debian packages that bring it, for the fix of a missing one. */
  readonly packages: readonly string[];
}

/**
 * Reports each daemon of the catalogue: from `run/daemons.json` while `coyote up` runs, else from
 * what is on this machine (its program) and in the state folder (its configuration).
 * @throws Error naming the file and field when `run/daemons.json` is malformed.
 */
export async function gatherDaemons(stateDir: string, now: number = Date.now()): Promise<DaemonReport[]> {
  const published = await readDaemonStates(stateDir);
  const paths = daemonPaths(stateDir);
  return DAEMONS.map((definition): DaemonReport => {
    const base = { name: definition.name, packages: definition.packages };
    const known = published?.daemons.find((d) => d.name === definition.name);
    if (known === undefined) {
      if (findDaemonProgram(definition.program) === undefined) return { ...base, state: "not installed", detail: `${definition.program} not found (apt-get install ${definition.packages.join(" ")})` };
      const config = definition.configFile(paths);
      if (!existsSync(config)) return { ...base, state: "no configuration", detail: `no ${config} yet` };
      return { ...base, state: "stopped", detail: published === undefined ? "configured; coyote up runs it" : "configured; not run by this coyote up" };
    }
    const parts: string[] = [];
    if (known.state === "running" && known.pid !== undefined) {
      const since = known.since === undefined ? undefined : Date.parse(known.since);
      parts.push(`pid ${known.pid}${since === undefined || Number.isNaN(since) ? "" : `, up ${formatDuration(Math.max(0, now - since) / 1000)} (since ${known.since ?? ""})`}`);
    } else if (known.detail !== undefined) parts.push(known.detail);
    if (known.lastExit !== undefined) parts.push(`last exit: ${known.lastExit}`);
    if (known.restarts > 0) parts.push(`${known.restarts} restart${known.restarts === 1 ? "" : "s"}`);
    if (known.reloads > 0) parts.push(`${known.reloads} reload${known.reloads === 1 ? "" : "s"}`);
    if (known.reloadError !== undefined) parts.push(`last reload failed: ${known.reloadError}`);
    return { ...base, state: known.state, detail: parts.join("; ") };
  });
}
