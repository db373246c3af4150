// The test's own Docker engine and the `docker` command talking to it: images imported from a
// tarball (no registry is reachable), networks the test makes, each removed with the engine.
import { execFile, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { startDockerd, type Dockerd } from "@coyote/docker-activator/testing";

/** Debian's docker client (package docker.io), the same release as its engine. */
export const DOCKER = "/usr/bin/docker";

/** A running test engine and the `docker` command bound to it. */
export interface TestEngine {
  readonly dockerd: Dockerd;
  /** Runs `docker <args>` on this engine; resolves with its stdout. */
  docker(args: readonly string[], options?: { readonly timeoutMs?: number; readonly input?: string }): Promise<string>;
  /** Stops every container, removes every network and image, stops the engine, removes its folder. */
  stop(): Promise<void>;
}

/** Runs a program with a deadline and a cap on its output; rejects with its stderr. */
export function runProgram(program: string, args: readonly string[], options: { readonly timeoutMs?: number; readonly input?: string; readonly env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { timeout: options.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024, killSignal: "SIGKILL", env: options.env }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${program} ${args.slice(0, 4).join(" ")}: ${error.message.split("\n")[0] ?? ""}\n${stderr.trim().split("\n").slice(-20).join("\n")}`, { cause: error }));
      else resolve(stdout);
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Starts a private engine for one test file (vfs storage, no default bridge, no iptables). */
export async function startTestEngine(name: string): Promise<TestEngine> {
  const dockerd = await startDockerd(name);
  const docker = (args: readonly string[], options: { readonly timeoutMs?: number; readonly input?: string } = {}) =>
    runProgram(DOCKER, ["-H", `unix://${dockerd.socketPath}`, ...args], options);
  return { dockerd, docker, stop: () => dockerd.stop() };
}

/**
 * Imports a root tarball as an image (`docker import`), with `/sbin/init` as its command.
 * @returns the image's name.
 */
export async function importImage(engine: TestEngine, tarball: string, name: string): Promise<string> {
  await engine.docker(["import", "--change", 'CMD ["/sbin/init"]', tarball, name], { timeoutMs: 10 * 60_000 });
  return name;
}

/** A bridge network the test made: no route leads from it beyond the host. */
export interface TestNetwork {
  readonly name: string;
  readonly subnet: string;
  /** The host's address on it. */
  readonly gateway: string;
  /** The kernel bridge. */
  readonly bridge: string;
}

/** The host's IPv4 addresses in 10.238.0.0/16, as the third octet of each. */
async function hostAddresses(): Promise<number[]> {
  const out = await runProgram("ip", ["-o", "-4", "addr", "show"], { timeoutMs: 10_000 });
  return [...out.matchAll(/\binet 10\.238\.(\d+)\.\d+\//g)].map((m) => Number(m[1]));
}

/** The /24s of 10.238.0.0/16 the host has an address in, by third octet. */
async function hostSubnets(): Promise<Set<number>> {
  return new Set(await hostAddresses());
}

/** How many of the host's interfaces have an address in 10.238.<third>.0/24. */
async function hostSubnetCount(third: number): Promise<number> {
  return (await hostAddresses()).filter((t) => t === third).length;
}

/**
 * Makes a bridge network on a random /24 in 10.238.0.0/16 that the host has no address in yet and turns off IPv4 forwarding on its
 * bridge before any container joins it: the host answers its machines itself (port proxies, the
 * allowlist proxy) but routes nothing they send to any other address.
 */
export async function createNetwork(engine: TestEngine, name: string): Promise<TestNetwork> {
  for (let attempt = 0; ; attempt++) {
    // Another engine's networks (a concurrent test's, or a bridge a killed run left) are unknown
    // to this engine: a /24 the host has an address in already would route the machine away.
    const taken = await hostSubnets();
    const free = Array.from({ length: 256 }, (_, i) => i).filter((i) => !taken.has(i));
    const third = free[randomInt(0, free.length)];
    if (third === undefined) throw new Error("no free /24 in 10.238.0.0/16 for a test network: the host has an address in every one");
    const subnet = `10.238.${String(third)}.0/24`;
    const gateway = `10.238.${String(third)}.1`;
    const bridge = `ct${String(process.pid % 100000)}-${String(third)}`.slice(0, 15);
    try {
      await engine.docker(["network", "create", "--driver", "bridge", "--internal", "--subnet", subnet, "--gateway", gateway, "--opt", `com.docker.network.bridge.name=${bridge}`, "--opt", "com.docker.network.bridge.enable_ip_masquerade=false", name]);
    } catch (error) {
      // Another test's network took that /24 (or that bridge name): pick again.
      if (attempt < 8 && /overlap|exists|in use/i.test((error as Error).message)) continue;
      throw error;
    }
    await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/forwarding`, "0\n");
    // Two engines may have picked the same /24 at the same moment: the later one picks again.
    if (attempt < 8 && (await hostSubnetCount(third)) > 1) {
      await engine.docker(["network", "rm", name]).catch(() => undefined);
      continue;
    }
    return { name, subnet, gateway, bridge };
  }
}

/**
 * Copies the files git knows in `checkout` (tracked and new, not ignored; as they are in the
 * working tree) into `dest` inside a container, as root-owned files.
 */
export async function copyCheckout(engine: TestEngine, container: string, checkout: string, dest: string): Promise<number> {
  const list = (await runProgram("git", ["-C", checkout, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], { timeoutMs: 60_000 })).split("\0").filter((f) => f !== "");
  // A file git tracks but the working tree has deleted is left out, as the checkout has it.
  const present = list.filter((f) => existsSync(`${checkout}/${f}`));
  await engine.docker(["exec", container, "mkdir", "-p", dest]);
  await new Promise<void>((resolve, reject) => {
    const tar = spawn("tar", ["-C", checkout, "--owner=0", "--group=0", "--numeric-owner", "-cf", "-", "--null", "-T", "-"], { stdio: ["pipe", "pipe", "pipe"] });
    const cp = spawn(DOCKER, ["-H", `unix://${engine.dockerd.socketPath}`, "cp", "-", `${container}:${dest}`], { stdio: ["pipe", "ignore", "pipe"] });
    let errors = "";
    tar.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    cp.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()));
    tar.stdout.pipe(cp.stdin);
    tar.stdin.end(present.map((f) => `${f}\0`).join(""));
    const timer = setTimeout(() => {
      tar.kill("SIGKILL");
      cp.kill("SIGKILL");
    }, 5 * 60_000);
    let done = 0;
    const finish = (code: number | null) => {
      if (code !== 0) {
        clearTimeout(timer);
        reject(new Error(`copying the checkout into ${container}: ${errors.trim()}`));
        return;
      }
      if (++done === 2) {
        clearTimeout(timer);
        resolve();
      }
    };
    tar.once("exit", finish);
    cp.once("exit", finish);
  });
  return present.length;
}
