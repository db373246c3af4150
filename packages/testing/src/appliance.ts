// The whole appliance for a browser test or a benchmark: a server spec with free loopback ports
// written through the state store, then `coyote up --no-build` in its own process group with its
// output in files of the state folder, waited for until the panel answers, and stopped by its pid.
import { spawn } from "node:child_process";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StateStore, type ServerSpec } from "@coyote/spec";
import { childEnvironment } from "./env.ts";
import { freePorts, freeUdpTcpPort } from "./index.ts";
import { alive } from "./processes.ts";

/** The ports a test box's server spec gives it, all on 127.0.0.1. */
export interface ApplianceLoopbackPorts {
  readonly panel: number;
  readonly http: number;
  readonly https: number;
  readonly dns: number;
  readonly smtp: number;
  readonly submission: number;
  readonly submissions: number;
  readonly imap: number;
  readonly imaps: number;
  readonly xmppClient: number;
  readonly xmppServer: number;
}

/** What `coyote up` printed, once the panel answers. */
export interface LaunchedAppliance {
  /** The pid of `coyote up`, the leader of its process group. */
  readonly pid: number;
  /** The panel's base URL, as printed (ends with `/`). */
  readonly panelUrl: string;
  /** The one-time activation token, as printed. */
  readonly activationToken: string | undefined;
  /** The files that hold `coyote up`'s stdout and stderr. */
  readonly logs: { readonly stdout: string; readonly stderr: string };
}

/**
 * Writes a server spec for a box on free loopback ports (process runtime) through the state store
 * of `stateDir`, so that it is in the history like any spec.
 * @returns the ports it gave the box.
 */
export async function writeLoopbackServer(stateDir: string, server: Pick<ServerSpec, "name" | "hostname"> & Partial<Pick<ServerSpec, "customerDomain">>, author: { name: string; email: string }, message: string): Promise<ApplianceLoopbackPorts> {
  const [panel = 0, http = 0, https = 0, smtp = 0, submission = 0, submissions = 0, imap = 0, imaps = 0, xmppClient = 0, xmppServer = 0] = await freePorts(10);
  if ([panel, http, https, smtp, submission, submissions, imap, imaps, xmppClient, xmppServer].includes(0)) throw new Error("starting the appliance: too few free ports");
  const dns = await freeUdpTcpPort();
  const store = await StateStore.open(stateDir);
  await store.applySpec(
    {
      schemaVersion: 1,
      kind: "Server",
      ...server,
      runtime: "process",
      ports: { panel, http, https },
      dns: { listen: [`127.0.0.1:${dns}`] },
      mail: { smtpListen: `127.0.0.1:${smtp}`, submissionListen: `127.0.0.1:${submission}`, submissionsListen: `127.0.0.1:${submissions}`, imapListen: `127.0.0.1:${imap}`, imapsListen: `127.0.0.1:${imaps}` },
      xmpp: { clientPort: xmppClient, serverPort: xmppServer },
    },
    { author, message },
  );
  return { panel, http, https, dns, smtp, submission, submissions, imap, imaps, xmppClient, xmppServer };
}

/** Whether the panel answers HTTP at all (any status: before activation it redirects). */
async function panelAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status > 0;
  } catch {
    return false;
  }
}

/**
 * Runs `coyote up --no-build` of the checkout at `repo` on the state folder, detached in its own
 * process group, and waits (at most `timeoutMs`) until it printed the panel URL (and the
 * activation token, when `needToken`) and the panel answers.
 * @throws Error saying why (it exited, or the time ran out), with the last lines of its output;
 *   it is stopped first.
 */
export async function launchAppliance(repo: string, stateDir: string, options: { readonly timeoutMs?: number; readonly needToken?: boolean } = {}): Promise<LaunchedAppliance> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const logs = { stdout: join(stateDir, "coyote-up.stdout.log"), stderr: join(stateDir, "coyote-up.stderr.log") };
  const out = await open(logs.stdout, "w");
  const err = await open(logs.stderr, "w");
  const child = spawn(join(repo, "coyote"), ["up", "--no-build"], { cwd: repo, env: childEnvironment({ COYOTE_STATE: stateDir, FORCE_COLOR: "0" }), stdio: ["ignore", out.fd, err.fd], detached: true });
  await out.close();
  await err.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting the appliance: could not run ${join(repo, "coyote")}`);
  let exited: number | string | undefined;
  child.once("exit", (code, signal) => (exited = code ?? signal ?? "unknown"));
  // The child leads its own group and its pid is kept; the caller's process must not wait for it.
  child.unref();
  const deadline = Date.now() + timeoutMs;
  let panelUrl: string | undefined;
  let activationToken: string | undefined;
  while (Date.now() < deadline && exited === undefined) {
    const printed = await readFile(logs.stdout, "utf8");
    panelUrl ??= /^panel: (http:\/\/\S+\/)\s*$/m.exec(printed)?.[1];
    activationToken ??= /^activation token: ([0-9A-Z]{4}(?:-[0-9A-Z]{4})+)/m.exec(printed)?.[1];
    if (panelUrl !== undefined && (activationToken !== undefined || options.needToken !== true) && (await panelAnswers(panelUrl))) return { pid, panelUrl, activationToken, logs };
    await sleep(250);
  }
  const why = exited !== undefined ? `coyote up exited (${String(exited)})` : `it was not up after ${timeoutMs / 1000} s`;
  const tail = await describeLogs(logs);
  await stopAppliance(pid);
  throw new Error(`starting the appliance in ${stateDir}: ${why}; panel URL ${panelUrl ?? "not printed"}, activation token ${activationToken === undefined ? "not printed" : "printed"}\n${tail}`);
}

/** The last lines of `coyote up`'s output files, for an error message. */
export async function describeLogs(logs: { readonly stdout: string; readonly stderr: string }, lines = 30): Promise<string> {
  const parts: string[] = [];
  for (const [name, file] of Object.entries(logs)) {
    const text = await readFile(file, "utf8").catch(() => "");
    parts.push(`--- ${name} (${file}), last ${lines} lines:\n${text.split("\n").slice(-lines).join("\n")}`);
  }
  return parts.join("\n");
}

/**
 * Stops the appliance: SIGTERM to `coyote up` (which stops its components), then waits for it to
 * exit; after `graceMs` its whole process group gets SIGKILL. Only this pid and its group are
 * touched.
 */
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
    // The group id is the pid: the appliance was spawned detached, as the leader of its own group.
    process.kill(-pid, "SIGKILL");
  } catch {
    // it ended between the check and the kill
  }
  for (let i = 0; i < 50 && alive(pid); i++) await sleep(100);
}
