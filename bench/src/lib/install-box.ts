// Helpers of bench/install: machines of the installer harness (integration/src/install/) that
// reach Debian's archive and the npm registry through its allowlist proxy and stay up after their
// command (the harness's own install phase commits and removes its machine), a command run in one
// with its output lines timed as they come, and the box's pages asked over HTTPS from the host.
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createNetwork, DOCKER, type TestEngine } from "../../../integration/src/install/engine.ts";
import { trustHostAuthorities } from "../../../integration/src/install/harness.ts";
import { startMachine, type Machine } from "../../../integration/src/install/machine.ts";
import { startAllowlistProxy, type AllowlistProxy } from "../../../integration/src/install/proxy.ts";

/** A machine booted with systemd on a network of its own, with the allowlist proxy for its commands. */
export interface ProxiedMachine {
  readonly machine: Machine;
  readonly proxy: AllowlistProxy;
  /** `http_proxy` and friends, for a command run with {@link runTimed}. */
  readonly env: Readonly<Record<string, string>>;
}


let networks = 0;

/**
 * Boots a machine of `image` as the harness's install phase does (its network, the allowlist
 * proxy, this host's extra authorities trusted, as the harness gives them), and leaves it running.
 * The engine removes its machines and networks when it stops.
 */
export async function startProxiedMachine(engine: TestEngine, image: string, hostname?: string): Promise<ProxiedMachine> {
  const network = await createNetwork(engine, `coyote-bench-install-${String(process.pid)}-${String(++networks)}`);
  const proxy = await startAllowlistProxy(network.gateway);
  try {
    const machine = await startMachine(engine, { image, network, init: "systemd", hostname, proxy: proxy.url });
    const env: Record<string, string> = { DEBIAN_FRONTEND: "noninteractive" };
    for (const name of ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"]) env[name] = proxy.url;
    // What an admin behind a proxy sets: the box's own names are asked directly, not through it
    // (install.sh's curl to its panel would otherwise go to the proxy, which refuses it).
    for (const name of ["no_proxy", "NO_PROXY"]) env[name] = `localhost,127.0.0.1,::1${hostname === undefined ? "" : `,${hostname}`}`;
    if ((await trustHostAuthorities(engine, machine)) > 0) env.NODE_EXTRA_CA_CERTS = "/etc/ssl/certs/ca-certificates.crt";
    return { machine, proxy, env };
  } catch (error) {
    await proxy.close();
    throw error;
  }
}

/** One line of a command's output and when it came, in ms since the command started. */
export interface TimedLine {
  readonly ms: number;
  readonly text: string;
}

/** What {@link runTimed} gives back. */
export interface TimedRun {
  readonly code: number | null;
  readonly ms: number;
  readonly lines: readonly TimedLine[];
}

/** The most output lines kept of one command. */
const MAX_LINES = 200_000;

/**
 * Runs a shell script in the machine (`docker exec`, standard error into standard output), timing
 * each output line as it arrives; calls `onLine` with each. Killed after `timeoutMs`.
 */
export function runTimed(engine: TestEngine, machine: Machine, script: string, options: { readonly env: Readonly<Record<string, string>>; readonly timeoutMs: number; readonly onLine?: (line: TimedLine) => void }): Promise<TimedRun> {
  const started = performance.now();
  const args = ["-H", `unix://${engine.dockerd.socketPath}`, "exec", ...Object.entries(options.env).flatMap(([k, v]) => ["--env", `${k}=${v}`]), machine.name, "bash", "-c", `exec 2>&1\n${script}`];
  const child = spawn(DOCKER, args, { stdio: ["ignore", "pipe", "pipe"] });
  const lines: TimedLine[] = [];
  let partial = "";
  const take = (chunk: Buffer) => {
    const parts = (partial + chunk.toString("utf8")).split("\n");
    partial = parts.pop() ?? "";
    for (const text of parts) {
      const line = { ms: performance.now() - started, text };
      if (lines.length < MAX_LINES) lines.push(line);
      options.onLine?.(line);
    }
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
  return new Promise((resolve, reject) => {
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      if (partial !== "") lines.push({ ms: performance.now() - started, text: partial });
      resolve({ code, ms: performance.now() - started, lines });
    });
  });
}


/**
 * The Debian packages install.sh installs with the given choices, read from install.sh and the
 * parts it sources (tooling/install/*.sh), so that the peer installs exactly those.
 * @throws Error when they no longer list them the way this reads.
 */
export async function installerPackages(repo: string, choices: { readonly mail: boolean; readonly xmpp: boolean; readonly docker: boolean }): Promise<string[]> {
  const parts = join(repo, "tooling", "install");
  const files = [join(repo, "install.sh"), ...(await readdir(parts).catch(() => [])).filter((f) => f.endsWith(".sh")).map((f) => join(parts, f))];
  const text = (await Promise.all(files.map((f) => readFile(f, "utf8")))).join("\n");
  const installSh = "install.sh and tooling/install/*.sh";
  const list = (pattern: RegExp, what: string): string[] => {
    const found = pattern.exec(text)?.[1];
    if (found === undefined) throw new Error(`bench/install: no ${what} package list in ${installSh}`);
    return found.trim().split(/\s+/);
  };
  const packages = list(/^packages=\(([^)]*)\)$/m, "base");
  if (choices.mail) packages.push(...list(/^\[ "\$mail" = yes \] && packages\+=\(([^)]*)\)$/m, "mail"));
  if (choices.xmpp) packages.push(...list(/^\[ "\$xmpp" = yes \] && packages\+=\(([^)]*)\)$/m, "XMPP"));
  if (choices.docker) packages.push(...list(/^\[ "\$docker" = yes \] && packages\+=\(([^)]*)\)$/m, "Docker"));
  for (const name of packages) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`bench/install: ${JSON.stringify(name)} in ${installSh} is not a Debian package name`);
  }
  return packages;
}

/**
 * The peer's apt steps, each its own script: install.sh's answers and policy with `apt-get update`,
 * the packages downloaded only, then installed from the package cache (as install.sh would with a
 * warm cache).
 */
export function aptScripts(packages: readonly string[]): { update: string; download: string; install: string } {
  const install = `apt-get install -y -q --no-install-recommends ${packages.join(" ")}`;
  return {
    update: `set -eu
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q`,
    download: `${install} --download-only`,
    install: `set -eu\n${install}\nrm -f /usr/sbin/policy-rc.d`,
  };
}

/**
 * Copies files from one machine to another through a tar stream: `pack` is a shell command run in
 * `from` that writes a tar to its standard output, unpacked into `into` in `to`.
 * @returns the bytes copied.
 */
export function copyBetween(engine: TestEngine, from: Machine, to: Machine, pack: string, into: string): Promise<number> {
  const host = ["-H", `unix://${engine.dockerd.socketPath}`];
  const source = spawn(DOCKER, [...host, "exec", from.name, "bash", "-c", pack], { stdio: ["ignore", "pipe", "pipe"] });
  const sink = spawn(DOCKER, [...host, "exec", "--interactive", to.name, "bash", "-c", `mkdir -p '${into}' && tar -C '${into}' -xf -`], { stdio: ["pipe", "ignore", "pipe"] });
  let bytes = 0;
  let errors = "";
  source.stdout.on("data", (chunk: Buffer) => (bytes += chunk.length));
  source.stdout.pipe(sink.stdin);
  for (const child of [source, sink]) child.stderr.on("data", (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-4000)));
  const timer = setTimeout(() => {
    source.kill("SIGKILL");
    sink.kill("SIGKILL");
  }, 10 * 60_000);
  const exited = (child: typeof source | typeof sink) => new Promise<number | null>((done) => child.once("close", done));
  return Promise.all([exited(source), exited(sink)]).then(([a, b]) => {
    clearTimeout(timer);
    if (a !== 0 || b !== 0) throw new Error(`copying ${pack} from ${from.name} to ${to.name}:${into}: exit ${String(a)}/${String(b)}\n${errors.trim()}`);
    return bytes;
  });
}
