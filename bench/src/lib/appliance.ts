// The whole appliance for a benchmark: `coyote up --no-build` in a fresh state folder whose
// server spec gives it free loopback ports, started in its own process group and stopped by its
// pid. Its output goes to files in the state folder.
import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { StateStore, type ServerSpec } from "@coyote/spec";
import { freePorts, freeUdpTcpPort } from "@coyote/testing";

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
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts the appliance of the checkout at `repo` with its state in `stateDir` (an empty folder);
 * waits at most `timeoutMs` for the panel to answer.
 * @throws naming the output files when it does not come up.
 */
export async function startAppliance(repo: string, stateDir: string, server: Pick<ServerSpec, "hostname"> & Partial<Pick<ServerSpec, "customerDomain">>, timeoutMs = 120_000): Promise<Appliance> {
  const [panel = 0, http = 0, https = 0, smtp = 0, xmppClient = 0, xmppServer = 0] = await freePorts(6);
  const dns = await freeUdpTcpPort();
  const store = await StateStore.open(stateDir);
  await store.applySpec(
    {
      schemaVersion: 1,
      kind: "Server",
      name: "Bench box",
      ...server,
      runtime: "process",
      ports: { panel, http, https },
      dns: { listen: [`127.0.0.1:${dns}`] },
      mail: { smtpListen: `127.0.0.1:${smtp}` },
      xmpp: { clientPort: xmppClient, serverPort: xmppServer },
    },
    { author: AUTHOR, message: "bench: a fresh box" },
  );
  const stdout = join(stateDir, "coyote-up.stdout.log");
  const out = await open(stdout, "w");
  const err = await open(join(stateDir, "coyote-up.stderr.log"), "w");
  const env: Record<string, string | undefined> = { ...process.env, COYOTE_STATE: stateDir, FORCE_COLOR: "0" };
  delete env.NODE_OPTIONS;
  const child = spawn(join(repo, "coyote"), ["up", "--no-build"], { cwd: repo, env, stdio: ["ignore", out.fd, err.fd], detached: true });
  await out.close();
  await err.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting the appliance: could not run ${join(repo, "coyote")}`);
  child.unref();
  const deadline = Date.now() + timeoutMs;
  let panelUrl: string | undefined;
  while (Date.now() < deadline && alive(pid)) {
    panelUrl ??= /^panel: (http:\/\/\S+\/)\s*$/m.exec(await readFile(stdout, "utf8"))?.[1];
    if (panelUrl !== undefined) {
      const answered = await fetch(panelUrl, { redirect: "manual", signal: AbortSignal.timeout(5000) }).then(
        async (r) => (await r.body?.cancel(), true),
        () => false,
      );
      if (answered) return { stateDir, pid, panelUrl, ports: { panel, http, https }, caFile: join(stateDir, "proxy", "ca", "ca.pem"), store };
    }
    await sleep(250);
  }
  await stopAppliance(pid);
  throw new Error(`the appliance in ${stateDir} did not come up within ${timeoutMs / 1000} s; see ${stdout} and coyote-up.stderr.log`);
}

/** SIGTERM to `coyote up`, then SIGKILL to its process group after `graceMs`. */
export async function stopAppliance(pid: number, graceMs = 15_000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive(pid)) await sleep(100);
  if (!alive(pid)) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
