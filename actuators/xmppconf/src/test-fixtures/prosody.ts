// Test fixtures: a real Prosody started by the test on loopback, an XMPP client that logs in with
// SCRAM-SHA-1, and the checks for the programs the tests need.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { TestContext } from "node:test";
import { client, xml, type Client } from "@xmpp/client";
import { freePort } from "@coyote/testing";

/**
 * Tells whether a program is on the PATH. With CI=true a missing program fails the test (CI must
 * install it, see tooling/system-deps.json); elsewhere the test is skipped with a loud message.
 * @returns true when the program is there; false when the test was skipped.
 */
export function requireProgram(t: TestContext, program: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).status === 0;
  if (found) return true;
  const message = `${program} is not installed (Debian package listed in tooling/system-deps.json)`;
  if (process.env.CI === "true") throw new Error(`${message}: required with CI=true`);
  t.diagnostic(`SKIPPED LOUDLY: ${message}`);
  t.skip(message);
  return false;
}

export { freePort };

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A Prosody the test started. */
export interface RunningProsody {
  /** Its process id. */
  readonly pid: number;
  /** How many times it has reloaded its configuration, counted in its log. */
  reloads(): Promise<number>;
  /** Stops it by its pid (SIGTERM, then SIGKILL), and waits until it is gone. */
  stop(): Promise<void>;
}

/**
 * Starts `prosody -F --config <file>` (0.12: `-F` keeps it in the foreground), its output going to
 * a file, and waits until its c2s port accepts connections and its admin socket exists.
 */
export async function startProsody(options: { configFile: string; outputFile: string; logFile: string; c2sPort: number; adminSocket: string }): Promise<RunningProsody> {
  const output = await open(options.outputFile, "a");
  const child = spawn("prosody", ["-F", "--config", options.configFile], { stdio: ["ignore", output.fd, output.fd] });
  await output.close();
  const pid = child.pid;
  if (pid === undefined) throw new Error("starting prosody: no pid");
  let exited = child.exitCode !== null;
  const exit = once(child, "exit").then(() => {
    exited = true;
  });
  // By its pid only: other Prosody processes on the machine are not ours.
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // Already gone.
    }
  };
  const stop = async () => {
    if (exited) return;
    signal("SIGTERM");
    const timer = sleep(10_000, undefined, { ref: false }).then(() => "timeout" as const);
    if ((await Promise.race([exit, timer])) === "timeout") {
      signal("SIGKILL");
      await exit;
    }
  };
  const deadline = Date.now() + 20_000;
  while (!(await accepts(options.c2sPort)) || !existsSync(options.adminSocket)) {
    if (exited || Date.now() > deadline) {
      await stop();
      const out = await readFile(options.outputFile, "utf8").catch(() => "");
      const log = await readFile(options.logFile, "utf8").catch(() => "");
      throw new Error(`starting prosody: it ${exited ? "exited" : "did not listen in time"}\n${out.slice(-2000)}\n${log.slice(-3000)}`);
    }
    await sleep(100);
  }
  return {
    pid,
    async reloads() {
      const log = await readFile(options.logFile, "utf8");
      return log.split("\n").filter((line) => line.includes("Reloading configuration file")).length;
    },
    stop,
  };
}

/** The outcome of a login attempt. */
export type LoginResult = { readonly ok: true; readonly client: Client } | { readonly ok: false; readonly error: string };

/**
 * Logs in to Prosody over a plain TCP connection on loopback, insisting on SCRAM-SHA-1 (the test
 * fails to log in if Prosody does not offer it), without reconnecting after a disconnect.
 */
export async function login(port: number, domain: string, username: string, password: string): Promise<LoginResult> {
  const xmpp = client({
    service: `xmpp://127.0.0.1:${port}`,
    domain,
    resource: "test",
    timeout: 10_000,
    credentials: async (authenticate, mechanisms) => {
      if (!mechanisms.includes("SCRAM-SHA-1")) throw new Error(`SCRAM-SHA-1 not offered (${mechanisms.join(", ")})`);
      await authenticate({ username, password }, "SCRAM-SHA-1");
    },
  });
  xmpp.reconnect.stop();
  // Errors are also thrown by start(); without a listener an 'error' event would crash the test.
  xmpp.on("error", () => undefined);
  try {
    await xmpp.start();
    return { ok: true, client: xmpp };
  } catch (error) {
    await xmpp.stop().catch(() => undefined);
    const condition = (error as { condition?: unknown }).condition;
    return { ok: false, error: typeof condition === "string" ? condition : error instanceof Error ? error.message : String(error) };
  }
}

/** Whether a logged-in client's session still answers: a ping to its server. */
export async function pings(xmpp: Client, domain: string): Promise<boolean> {
  try {
    await xmpp.iqCaller.request(xml("iq", { type: "get", to: domain }, xml("ping", { xmlns: "urn:xmpp:ping" })), 5_000);
    return true;
  } catch {
    return false;
  }
}

/** Waits until a client is disconnected (its status leaves `online`), or the time runs out. */
export async function disconnected(xmpp: Client, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (xmpp.status !== "online") return true;
    await sleep(50);
  }
  return false;
}
