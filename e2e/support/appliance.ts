// Starts the real appliance the way a user does (`./coyote up`), in a fresh state folder with free
// loopback ports, and stops it by its pid. Everything it prints goes to files in the state folder,
// never to the test run's own output.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { access, constants, mkdir, mkdtemp, open, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { StateStore } from "@coyote/spec";
import { freePorts, freeUdpTcpPort } from "@coyote/testing";
import { OUTPUT_DIR } from "./env.ts";

/** The repository root, found from this file's place (`e2e/support/`), not from a fixed path. */
export const REPO_ROOT = resolve(import.meta.dirname, "..", "..");

/** Debian's Chromium: the only browser these tests use (none is ever downloaded). */
export const CHROMIUM = "/usr/bin/chromium";

/** Everything a test needs to know about a running appliance; plain JSON, handed from the global setup to the workers. */
export interface ApplianceInfo {
  /** The state folder (`COYOTE_STATE`). */
  readonly stateDir: string;
  /** The panel's base URL, as `coyote up` printed it (ends with `/`). */
  readonly panelUrl: string;
  /** The one-time activation token `coyote up` printed. */
  readonly activationToken: string;
  /** The pid of `coyote up`. */
  readonly pid: number;
  /** The ports the server spec gives the box, all on 127.0.0.1. */
  readonly ports: { readonly panel: number; readonly http: number; readonly https: number; readonly dns: number; readonly smtp: number; readonly xmppClient: number; readonly xmppServer: number };
  /** The box's own CA (snickers' local CA), which signs the sites' certificates. */
  readonly caFile: string;
  /** The web app's build id when the appliance started (see {@link webAppBuild}). */
  readonly webAppBuild: string;
  /** The files that hold `coyote up`'s stdout and stderr. */
  readonly logs: { readonly stdout: string; readonly stderr: string };
}

/** The box's host name in the server spec. */
export const BOX_HOSTNAME = "box.test";

/**
 * Checks what the run cannot do without, before anything starts: Chromium and the built web app.
 * A missing one is an error in every mode (CI or not), so it can never turn into a silent skip.
 */
export async function checkPrerequisites(): Promise<void> {
  try {
    await access(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`the browser tests need Debian's Chromium at ${CHROMIUM} (apt-get install chromium); it is missing`);
  }
  // ./coyote reinstalls node_modules (npm ci) when its install stamp is stale; doing that under
  // the running test runner breaks it half-way, so a stale install stops the run before it starts.
  const lock = await readFile(join(REPO_ROOT, "package-lock.json")).catch(() => undefined);
  const want = `${process.version} ${lock === undefined ? "none" : createHash("sha256").update(lock).digest("hex")}`;
  const stamp = await readFile(join(REPO_ROOT, "node_modules", ".coyote-install-stamp"), "utf8").catch(() => "");
  if (stamp.trim() !== want) {
    throw new Error(`the npm dependencies are not installed for this package-lock.json and Node ${process.version}: run ./coyote --help (or ./coyote test) once first, since ./coyote up would reinstall them under the running tests`);
  }
  if ((await webAppBuild()) === undefined) {
    throw new Error(`the web app is not built (no ${BUILD_ID_FILE}): run npm run build (or ./coyote test, whose build step comes first)`);
  }
}

/** The file Next.js writes last when it builds the web app. */
export const BUILD_ID_FILE = join(REPO_ROOT, "apps", "coyote-crm", ".next", "BUILD_ID");

/**
 * The web app's current build id, undefined when it is not built. A build made while the
 * appliance runs replaces the files the running panel serves, so its pages then fail.
 */
export async function webAppBuild(): Promise<string | undefined> {
  return (await readFile(BUILD_ID_FILE, "utf8").catch(() => undefined))?.trim();
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Whether the panel answers HTTP at all (any status: before activation it redirects to /activate). */
async function panelAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status > 0;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a fresh appliance: a new temp state folder, a server spec with free loopback ports
 * written first through the state store (so it is in the history like any spec), then
 * `coyote up --no-build` in its own process group. Waits (at most `timeoutMs`) until it printed
 * the panel URL and the activation token and the panel answers.
 * @throws when it does not come up in time; the error names its log files and their last lines.
 */
export async function startAppliance(timeoutMs = 120_000): Promise<ApplianceInfo> {
  await checkPrerequisites();
  const build = (await webAppBuild()) ?? "";
  // Inside the run's output folder: kept after the run for a look at the logs, and cleared by
  // Playwright when the next run starts, so old appliances' state never piles up.
  await mkdir(OUTPUT_DIR, { recursive: true });
  const stateDir = await mkdtemp(join(OUTPUT_DIR, "state-"));
  const [panel, http, https, smtp, xmppClient, xmppServer] = await freePorts(6);
  if (panel === undefined || http === undefined || https === undefined || smtp === undefined || xmppClient === undefined || xmppServer === undefined) {
    throw new Error("starting the appliance: too few free ports");
  }
  const dns = await freeUdpTcpPort();
  const store = await StateStore.open(stateDir);
  await store.applySpec(
    {
      schemaVersion: 1,
      kind: "Server",
      name: "Test box",
      hostname: BOX_HOSTNAME,
      runtime: "process",
      ports: { panel, http, https },
      dns: { listen: [`127.0.0.1:${dns}`] },
      mail: { smtpListen: `127.0.0.1:${smtp}` },
      xmpp: { clientPort: xmppClient, serverPort: xmppServer },
    },
    { author: { name: "e2e", email: "e2e@example.org" }, message: "e2e: a fresh test box" },
  );

  const logs = { stdout: join(stateDir, "coyote-up.stdout.log"), stderr: join(stateDir, "coyote-up.stderr.log") };
  const out = await open(logs.stdout, "w");
  const err = await open(logs.stderr, "w");
  const env: Record<string, string | undefined> = { ...process.env, COYOTE_STATE: stateDir, FORCE_COLOR: "0" };
  // The appliance gets the user's environment but not Node switches meant for the test runner (a loader).
  delete env.NODE_OPTIONS;
  const child = spawn(join(REPO_ROOT, "coyote"), ["up", "--no-build"], { cwd: REPO_ROOT, env, stdio: ["ignore", out.fd, err.fd], detached: true });
  await out.close();
  await err.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting the appliance: could not run ${join(REPO_ROOT, "coyote")}`);
  let exited: number | string | undefined;
  child.once("exit", (code, signal) => (exited = code ?? signal ?? "unknown"));
  // The child runs in its own group and its pid is kept; the runner must not wait for it on exit.
  child.unref();

  const deadline = Date.now() + timeoutMs;
  let panelUrl: string | undefined;
  let activationToken: string | undefined;
  while (Date.now() < deadline && exited === undefined) {
    const printed = await readFile(logs.stdout, "utf8");
    panelUrl ??= /^panel: (http:\/\/\S+\/)\s*$/m.exec(printed)?.[1];
    activationToken ??= /^activation token: ([0-9A-Z]{4}(?:-[0-9A-Z]{4})+)/m.exec(printed)?.[1];
    if (panelUrl !== undefined && activationToken !== undefined && (await panelAnswers(panelUrl))) break;
    await sleep(250);
  }
  const info: ApplianceInfo = {
    stateDir,
    panelUrl: panelUrl ?? "",
    activationToken: activationToken ?? "",
    pid,
    ports: { panel, http, https, dns, smtp, xmppClient, xmppServer },
    caFile: join(stateDir, "proxy", "ca", "ca.pem"),
    webAppBuild: build,
    logs,
  };
  if (panelUrl === undefined || activationToken === undefined || !(await panelAnswers(panelUrl))) {
    const why = exited !== undefined ? `coyote up exited (${String(exited)})` : `it was not up after ${timeoutMs / 1000} s`;
    const tail = await describeLogs(info);
    await stopAppliance(info);
    throw new Error(`starting the appliance in ${stateDir}: ${why}; panel URL ${panelUrl ?? "not printed"}, activation token ${activationToken === undefined ? "not printed" : "printed"}\n${tail}`);
  }
  return info;
}

/** The last lines of `coyote up`'s output files, for an error message. */
export async function describeLogs(info: ApplianceInfo, lines = 30): Promise<string> {
  const parts: string[] = [];
  for (const [name, file] of Object.entries(info.logs)) {
    const text = await readFile(file, "utf8").catch(() => "");
    parts.push(`--- ${name} (${file}), last ${lines} lines:\n${text.split("\n").slice(-lines).join("\n")}`);
  }
  return parts.join("\n");
}

/**
 * Stops the appliance: SIGTERM to `coyote up` (which stops its components), then waits for it to
 * exit; after 15 s its whole process group gets SIGKILL. Only this pid and its group are touched.
 */
export async function stopAppliance(info: Pick<ApplianceInfo, "pid">, graceMs = 15_000): Promise<void> {
  if (!alive(info.pid)) return;
  try {
    process.kill(info.pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive(info.pid)) await sleep(100);
  if (!alive(info.pid)) return;
  try {
    // The group id is the pid: the appliance was spawned detached, as the leader of its own group.
    process.kill(-info.pid, "SIGKILL");
  } catch {
    // it ended between the check and the kill
  }
  for (let i = 0; i < 50 && alive(info.pid); i++) await sleep(100);
}

/** Writes the appliance's info where the workers read it. */
export async function saveInfo(file: string, info: ApplianceInfo): Promise<void> {
  await writeFile(file, `${JSON.stringify(info, null, 2)}\n`);
}

/** Reads the info the global setup wrote. */
export async function loadInfo(file: string): Promise<ApplianceInfo> {
  return JSON.parse(await readFile(file, "utf8")) as ApplianceInfo;
}

/** The folder of the service specs, where a signup's service lands. */
export function servicesDir(info: Pick<ApplianceInfo, "stateDir">): string {
  return join(info.stateDir, "specs", "services");
}
