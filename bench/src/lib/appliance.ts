// The whole appliance for a benchmark: `coyote up --no-build` in a fresh state folder whose
// server spec gives it free loopback ports (the launcher the browser tests use too, in
// @coyote/testing), stopped by its pid. Its output goes to files in the state folder.
import { join } from "node:path";
import { StateStore, type ServerSpec } from "@coyote/spec";
import { launchAppliance, stopAppliance as stopLaunched, writeLoopbackServer } from "@coyote/testing";

/** A running appliance. */
export interface Appliance {
  readonly stateDir: string;
  readonly pid: number;
  readonly panelUrl: string;
  readonly ports: { readonly panel: number; readonly http: number; readonly https: number };
  /** The box's own CA, which signs the sites' certificates. */
  readonly caFile: string;
  readonly store: StateStore;
}

const AUTHOR = { name: "bench", email: "bench@example.org" };

/**
 * Starts the appliance of the checkout at `repo` with its state in `stateDir` (an empty folder);
 * waits at most `timeoutMs` for the panel to answer.
 * @throws naming the output files when it does not come up.
 */
export async function startAppliance(repo: string, stateDir: string, server: Pick<ServerSpec, "hostname"> & Partial<Pick<ServerSpec, "customerDomain">>, timeoutMs = 120_000): Promise<Appliance> {
  const ports = await writeLoopbackServer(stateDir, { name: "Bench box", ...server }, AUTHOR, "bench: a fresh box");
  const launched = await launchAppliance(repo, stateDir, { timeoutMs });
  return { stateDir, pid: launched.pid, panelUrl: launched.panelUrl, ports, caFile: join(stateDir, "proxy", "ca", "ca.pem"), store: await StateStore.open(stateDir) };
}

/** SIGTERM to `coyote up`, then SIGKILL to its process group after `graceMs`. */
export function stopAppliance(pid: number, graceMs = 15_000): Promise<void> {
  return stopLaunched(pid, graceMs);
}
