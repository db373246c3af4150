// Helpers for the DKIM signer's tests only: OpenDKIM started and stopped by its process group, the
// box's own DNS server (dnsconf's built-in backend) and a resolver that asks it and nothing else.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, openSync, statSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ActuatorContext } from "@coyote/actuator";
import { createLogger } from "@coyote/log";
import { ServerSpec, StateStore } from "@coyote/spec";
import { findProgram, waitFor } from "@coyote/testing";
import type { SignerAccount } from "../dkim-signer.ts";

/**
 * A fresh folder for the signer's tests, made under `/run` rather than the OS temp folder: OpenDKIM
 * refuses a key when any folder above it is writable by others (its RequireSafeKeys check), and
 * `/tmp` is. Mode 0755, so that the daemons' own users can pass through it.
 */
export async function signerTempRoot(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join("/run", prefix));
  await chmod(dir, 0o755);
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A daemon the test started in its own process group. */
export interface GroupDaemon {
  readonly pid: number;
  /** Whether it is still running. */
  alive(): boolean;
  /** SIGTERM to its process group, SIGKILL after `graceMs`, and waits for it to be gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts OpenDKIM in the foreground (`opendkim -f -x CONF`), its own process group, output to `logFile`. */
export function startOpenDkim(conf: string, logFile: string): GroupDaemon {
  const program = findProgram("opendkim") ?? "/usr/sbin/opendkim";
  const fd = openSync(logFile, "a");
  const child = spawn(program, ["-f", "-x", conf], { stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  const pid = child.pid;
  if (pid === undefined) throw new Error(`starting ${program} failed`);
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once("exit", () => {
    exited = true;
    resolve();
  }));
  return {
    pid,
    alive: () => !exited,
    async stop(graceMs = 5000) {
      if (exited) return;
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        return;
      }
      if ((await Promise.race([gone.then(() => "gone"), sleep(graceMs, "grace")])) === "grace") {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          // already gone
        }
        await gone;
      }
    },
  };
}

/** Waits until a unix socket accepts connections. */
export function waitForSocket(path: string, timeoutMs = 15_000): Promise<true> {
  return waitFor(`a listener on ${path}`, () => new Promise<true | undefined>((resolve) => {
    if (statSync(path, { throwIfNoEntry: false })?.isSocket() !== true) {
      resolve(undefined);
      return;
    }
    const socket = connect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(undefined));
  }), timeoutMs);
}

/** The `opendkim` user with Postfix's group, as production runs the signer; undefined when either is missing. */
export function signerAccount(): SignerAccount | undefined {
  const user = spawnSync("getent", ["passwd", "opendkim"], { encoding: "utf8" }).stdout.split(":");
  const group = spawnSync("getent", ["group", "postfix"], { encoding: "utf8" }).stdout.split(":");
  const uid = Number(user[2]);
  const gid = Number(group[2]);
  return Number.isInteger(uid) && Number.isInteger(gid) && user[0] === "opendkim" && group[0] === "postfix" ? { user: "opendkim", uid, group: "postfix", gid } : undefined;
}

/**
 * A DNS resolver for mailauth that asks only the box's own server on 127.0.0.1:`port` (one try,
 * two seconds): the DKIM key a verifier finds is the one the box publishes, never one from elsewhere.
 */
export function boxResolver(port: number): (name: string, rrtype: string) => Promise<string[][] | string[]> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return async (name, rrtype) => {
    if (rrtype !== "TXT") throw Object.assign(new Error(`the test resolver answers TXT only, not ${rrtype}`), { code: "ENOTFOUND" });
    return resolver.resolveTxt(name);
  };
}

/** An actuator context whose server spec serves DNS with the built-in backend on 127.0.0.1:`dnsPort`. */
export async function dnsContext(stateDir: string, hostname: string, dnsPort: number): Promise<ActuatorContext & { logFile: string }> {
  const store = await StateStore.open(stateDir);
  const logFile = join(stateDir, "logs", "dkim-signer-test.log");
  const logger = createLogger({ component: "minion", file: logFile, level: "debug" });
  const server = ServerSpec.parse({
    schemaVersion: 1,
    kind: "Server",
    name: "test",
    hostname,
    publicIPv4: "192.0.2.10",
    dns: { backend: "builtin", listen: [`127.0.0.1:${dnsPort}`] },
  });
  return { stateDir: store.root, store, logger, signal: new AbortController().signal, server, logFile };
}
