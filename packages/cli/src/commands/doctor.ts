import { execFile } from "node:child_process";
import { createSocket } from "node:dgram";
import { access, constants, statfs, stat } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { promisify } from "node:util";
import type { Command } from "commander";
import { ServerSpec, StateStore, specPath, validate } from "@coyote/spec";
import { gatherDaemons } from "../daemons.ts";
import { INSTALLED_PATHS, installedBoxChecks, isInstalled, type InstalledPaths } from "../install/doctor.ts";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import { table, type Io } from "../io.ts";

const run = promisify(execFile);

/** The outcome of one check: `ok`, `warn` (works, but not as well as it could), or `fail`. */
export interface Check {
  /** What was checked. */
  readonly name: string;
  /** The outcome. */
  readonly result: "ok" | "warn" | "fail";
  /** What was found. */
  readonly detail: string;
  /** How to fix it, for `warn` and `fail`. */
  readonly fix?: string;
}

/** The Node major version Coyote runs on (docs/ARCHITECTURE.md, "Dependencies"). */
export const REQUIRED_NODE_MAJOR = 24;

/** Checks the Node version. */
export function checkNode(version: string = process.versions.node): Check {
  const major = Number(version.split(".")[0]);
  if (major >= REQUIRED_NODE_MAJOR) return { name: "node", result: "ok", detail: `Node ${version}` };
  return {
    name: "node",
    result: "fail",
    detail: `Node ${version} is older than ${REQUIRED_NODE_MAJOR}`,
    fix: `run Coyote through ./coyote, which installs Node ${REQUIRED_NODE_MAJOR} LTS into .coyote-runtime by itself`,
  };
}

/** Checks that the state folder is there and writable, and that its specs are valid. */
export async function checkState(stateDir: string): Promise<Check[]> {
  try {
    await stat(stateDir);
  } catch {
    return [{ name: "state", result: "ok", detail: `${stateDir} does not exist yet; coyote up creates it` }];
  }
  try {
    await access(stateDir, constants.W_OK);
  } catch {
    return [{ name: "state", result: "fail", detail: `${stateDir} is not writable by this user`, fix: `run as the user that owns it, or: chown -R $(id -u) ${stateDir}` }];
  }
  const checks: Check[] = [{ name: "state", result: "ok", detail: `${stateDir} is writable` }];
  const store = await StateStore.open(stateDir);
  const bad = (await store.listSpecs()).filter((e) => "error" in e);
  checks.push(bad.length === 0
    ? { name: "specs", result: "ok", detail: "every spec is valid" }
    : { name: "specs", result: "fail", detail: bad.map((b) => ("error" in b ? b.error.message : "")).join("; "), fix: "fix the named fields, or roll back with coyote spec history / coyote spec rollback REV" });
  const space = await statfs(stateDir);
  const freeGiB = (space.bavail * space.bsize) / 2 ** 30;
  checks.push(freeGiB >= 1
    ? { name: "disk", result: "ok", detail: `${freeGiB.toFixed(1)} GiB free for the state` }
    : { name: "disk", result: "warn", detail: `only ${freeGiB.toFixed(2)} GiB free for the state`, fix: "free some disk space: logs, stopped containers (docker system prune), old backups" });
  return checks;
}

/** Checks that git (the specs history) is installed. */
export async function checkGit(): Promise<Check> {
  try {
    const { stdout } = await run("git", ["--version"]);
    return { name: "git", result: "ok", detail: stdout.trim() };
  } catch {
    return { name: "git", result: "fail", detail: "git is not installed; the specs history needs it", fix: "apt-get install git" };
  }
}

/** Checks whether a Docker engine answers on its socket; without one, services run as processes. */
export function checkDocker(socketPath: string, timeoutMs = 2000): Promise<Check> {
  return new Promise((resolve) => {
    const missing = (why: string) =>
      resolve({
        name: "docker",
        result: "warn",
        detail: `no Docker engine at ${socketPath} (${why}); services will run with the process runtime`,
        fix: "to run services in containers: apt-get install docker.io && systemctl start docker",
      });
    const req = request({ socketPath, path: "/_ping", method: "GET", timeout: timeoutMs }, (res) => {
      res.resume();
      if (res.statusCode === 200) resolve({ name: "docker", result: "ok", detail: `a Docker engine answers at ${socketPath}` });
      else missing(`it answered ${String(res.statusCode)}`);
    });
    req.on("timeout", () => req.destroy(new Error("no answer in time")));
    req.on("error", (error: NodeJS.ErrnoException) => missing(error.code === "ENOENT" ? "no such socket" : error.code ?? error.message));
    req.end();
  });
}

/** Tells whether a TCP port can be listened on at an address. */
export function tcpPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Tells whether a UDP port can be bound at an address. */
export function udpPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(":") ? "udp6" : "udp4");
    socket.once("error", () => resolve(false));
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** The ports Coyote will listen on, from the server spec when there is one, else the defaults. */
export async function plannedPorts(stateDir: string): Promise<{ name: string; host: string; port: number; udp: boolean }[]> {
  let spec = validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "defaults", hostname: "defaults.invalid" }, "(defaults)");
  try {
    const store = await StateStore.open(stateDir);
    const found = await store.readJson(specPath("server"), ServerSpec);
    if (found) spec = found;
  } catch {
    // An unreadable server spec is reported by the specs check; the defaults still say something.
  }
  const ports = [
    { name: "http", host: "0.0.0.0", port: spec.ports.http, udp: false },
    { name: "https", host: "0.0.0.0", port: spec.ports.https, udp: false },
    { name: "panel", host: "127.0.0.1", port: spec.ports.panel, udp: false },
  ];
  for (const address of spec.dns.listen) {
    const cut = address.lastIndexOf(":");
    const host = address.slice(0, cut).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(cut + 1));
    ports.push({ name: "dns", host, port, udp: false }, { name: "dns", host, port, udp: true });
  }
  return ports;
}

/** Checks that the ports Coyote will listen on are free. */
export async function checkPorts(stateDir: string): Promise<Check[]> {
  const checks: Check[] = [];
  for (const p of await plannedPorts(stateDir)) {
    const free = p.udp ? await udpPortFree(p.port, p.host) : await tcpPortFree(p.port, p.host);
    const what = `${p.name} ${p.udp ? "udp" : "tcp"} ${p.host}:${p.port}`;
    checks.push(free
      ? { name: "port", result: "ok", detail: `${what} is free` }
      : { name: "port", result: "fail", detail: `${what} is in use by another program (or by a running coyote)`, fix: `stop what listens there (ss -ltnup | grep :${p.port}), or choose another port in specs/server.json` });
  }
  return checks;
}

/**
 * Checks each of the box's daemons: a missing program is a warning (the box runs without that
 * service, and its conditions say so), a daemon that keeps dying or failed a reload is a failure.
 */
export async function checkDaemons(stateDir: string): Promise<Check[]> {
  let reports;
  try {
    reports = await gatherDaemons(stateDir);
  } catch (error) {
    return [{ name: "daemons", result: "fail", detail: error instanceof Error ? error.message : String(error), fix: "stop coyote up, remove the file named, and start it again: it rewrites the file" }];
  }
  return reports.map((d): Check => {
    const name = `daemon ${d.name}`;
    if (d.state === "not installed") return { name, result: "warn", detail: d.detail, fix: `apt-get install ${d.packages.join(" ")}` };
    if (d.state === "needs root") return { name, result: "warn", detail: d.detail, fix: `run coyote up as root to serve what ${d.name} serves` };
    if (d.state === "restarting") return { name, result: "fail", detail: d.detail, fix: `see coyote logs and ${stateDir}/logs/${d.name}.log` };
    if (d.detail.includes("last reload failed")) return { name, result: "fail", detail: d.detail, fix: `fix the configuration named in ${stateDir}/logs/${d.name}.log; the daemon runs on the last one it loaded` };
    return { name, result: "ok", detail: `${d.state}: ${d.detail}` };
  });
}

/**
 * Runs every check. On an installed box (install.sh's `/etc/coyote/install.conf`), the box's ports
 * are its own and systemd runs its daemons: what install.sh set up is checked instead.
 */
export async function runChecks(env: CliEnv, installed: InstalledPaths = INSTALLED_PATHS): Promise<Check[]> {
  const common = [checkNode(), await checkGit(), ...(await checkState(env.stateDir)), await checkDocker(env.dockerSocket)];
  if (await isInstalled(installed)) return [...common, ...(await installedBoxChecks({ ...installed, stateDir: env.stateDir }))];
  return [...common, ...(await checkPorts(env.stateDir)), ...(await checkDaemons(env.stateDir))];
}

/** Adds `coyote doctor`. */
export function doctorCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("doctor")
    .description("check this machine for what Coyote needs, and say how to fix what is missing")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }) => {
      const checks = await runChecks(env);
      if (options.json) io.out(JSON.stringify(checks, null, 2));
      else {
        for (const line of table(checks.map((c) => [c.result === "ok" ? "ok" : c.result === "warn" ? "WARN" : "FAIL", c.name, c.detail]))) io.out(line);
        for (const c of checks.filter((c) => c.fix)) io.out(`  ${c.name}: fix: ${c.fix ?? ""}`);
      }
      const failed = checks.filter((c) => c.result === "fail").length;
      if (failed > 0) throw new CliError(`doctor: ${failed} problem${failed === 1 ? "" : "s"} found (see above)`, EXIT.MISSING);
    });
}
