// Starts the real appliance the way a user does (`./coyote up`), in a fresh state folder with free
// loopback ports, and stops it by its pid. Everything it prints goes to files in the state folder,
// never to the test run's own output.
import { createHash } from "node:crypto";
import { access, constants, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { launchAppliance, stopAppliance as stopLaunched, writeLoopbackServer, type ApplianceLoopbackPorts } from "@coyote/testing";
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
  /** The ports the server spec gives the box (panel, web, DNS, every mail listener, XMPP), all on 127.0.0.1. */
  readonly ports: ApplianceLoopbackPorts;
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
  const ports = await writeLoopbackServer(stateDir, { name: "Test box", hostname: BOX_HOSTNAME }, { name: "e2e", email: "e2e@example.org" }, "e2e: a fresh test box");
  const launched = await launchAppliance(REPO_ROOT, stateDir, { timeoutMs, needToken: true });
  return {
    stateDir,
    panelUrl: launched.panelUrl,
    activationToken: launched.activationToken ?? "",
    pid: launched.pid,
    ports,
    caFile: join(stateDir, "proxy", "ca", "ca.pem"),
    webAppBuild: build,
    logs: launched.logs,
  };
}

/**
 * Stops the appliance: SIGTERM to `coyote up` (which stops its components), then waits for it to
 * exit; after 15 s its whole process group gets SIGKILL. Only this pid and its group are touched.
 */
export function stopAppliance(info: Pick<ApplianceInfo, "pid">, graceMs = 15_000): Promise<void> {
  return stopLaunched(info.pid, graceMs);
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
