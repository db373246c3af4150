import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import type { CoyoteLogger } from "@coyote/log";
import { errorText } from "./runtime.ts";

/**
 * The addresses process units get their own networks from: one /30 per running unit (the host's
 * end, the unit's end). A private range that the test Docker bridge (10.231.7.0/24) and Docker's
 * own defaults (172.17.0.0/16 and up) do not use.
 */
export const DEFAULT_PROCESS_UNIT_NETWORK = "10.232.0.0/16";

/** Where the programs that make a unit's network are looked for (absolute paths only: a unit's PATH is its own). */
const TOOL_DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/** How long one `ip` or `nsenter` call may take. */
const TOOL_TIMEOUT_MS = 5000;
/** The host end of a unit's link is named this plus the unit's slot; 15 characters at most. */
const HOST_LINK_PREFIX = "cyu";
/** The route types `ip route` prints before a route's destination. */
const ROUTE_TYPES = new Set(["unicast", "local", "broadcast", "multicast", "anycast", "unreachable", "prohibit", "blackhole", "throw", "nat"]);

/**
 * What the shell between `unshare` and the unit does: waits until the activator has joined its
 * new network namespace to the host (a line "go" on its standard input; end of input means the
 * activator gave up), then becomes the unit. The unit's command comes as arguments, never as text.
 */
const WAIT_FOR_NETWORK = 'read -r go && [ "$go" = go ] && exec "$@" </dev/null; exit 97';

/** The programs a unit network is made with, by absolute path. */
export interface NetworkTools {
  readonly ip: string;
  readonly unshare: string;
  readonly nsenter: string;
  readonly setpriv: string;
}

/** The two ends of one unit's link. */
export interface UnitLink {
  /** The host's address on the link: what the unit sees its peer as (it reaches nothing else). */
  readonly hostAddress: string;
  /** The unit's address: where it listens, and where the proxy and the probe connect. */
  readonly unitAddress: string;
  /** The name of the host's end of the link. */
  readonly hostLink: string;
}

function ipv4ToInt(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => String(Math.floor(n / 2 ** shift) % 256)).join(".");
}

/**
 * Parses the pool of unit networks: an IPv4 CIDR inside the private ranges of RFC 1918, from /12
 * to /28 (at least four units).
 * @throws Error naming what is wrong with it.
 */
export function parseUnitPool(cidr: string): { readonly base: number; readonly prefix: number } {
  const match = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  const base = match?.[1] === undefined ? undefined : ipv4ToInt(match[1]);
  const prefix = Number(match?.[2]);
  if (base === undefined || !Number.isInteger(prefix)) throw new Error(`the process units' network ${JSON.stringify(cidr)} is not an IPv4 CIDR such as ${DEFAULT_PROCESS_UNIT_NETWORK}`);
  if (prefix < 12 || prefix > 28) throw new Error(`the process units' network ${cidr} must be between a /12 and a /28`);
  if (base % 2 ** (32 - prefix) !== 0) throw new Error(`the process units' network ${cidr} has host bits set; its base is ${intToIpv4(base - (base % 2 ** (32 - prefix)))}`);
  const inside = (net: string, bits: number) => {
    const start = ipv4ToInt(net) ?? 0;
    return base >= start && base + 2 ** (32 - prefix) <= start + 2 ** (32 - bits);
  };
  if (!inside("10.0.0.0", 8) && !inside("172.16.0.0", 12) && !inside("192.168.0.0", 16)) throw new Error(`the process units' network ${cidr} is not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)`);
  return { base, prefix };
}

function run(program: string, args: readonly string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { timeout: TOOL_TIMEOUT_MS, maxBuffer: 64 * 1024, killSignal: "SIGKILL" }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`${[program, ...args].join(" ")}: ${stderr.trim() || error.message}`, { cause: error }));
    });
    child.stdin?.end(input ?? "");
  });
}

function capture(program: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: TOOL_TIMEOUT_MS, maxBuffer: 1024 * 1024, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(new Error(`${[program, ...args].join(" ")}: ${stderr.trim() || error.message}`, { cause: error }));
    });
  });
}

/**
 * The network of process units: each running unit in a network namespace of its own, joined to the
 * host by one veth link with a /30 from the pool. The unit's namespace has its loopback, its end
 * of the link, and no route beyond the link: it reaches neither the host's loopback services (the
 * panel, the activator, the other units' ports) nor any other network, cannot take a port another
 * unit or the box uses, and can be reached only at its own address. A namespace ends with the last
 * process in it, and its link with it. Making one needs root (CAP_NET_ADMIN).
 */
export class ProcessUnitNetwork {
  readonly #base: number;
  /** How many units can have a network at once. */
  readonly slots: number;
  /** The programs it uses. */
  readonly tools: NetworkTools;
  /** The pool, as given. */
  readonly cidr: string;

  private constructor(cidr: string, tools: NetworkTools) {
    const { base, prefix } = parseUnitPool(cidr);
    this.#base = base;
    this.slots = 2 ** (32 - prefix) / 4;
    this.tools = tools;
    this.cidr = cidr;
  }

  /**
   * Checks the pool and the programs, and that no network of the host overlaps the pool.
   * @throws Error naming a missing program (with its Debian package), a bad pool, or the route
   *   that overlaps it.
   */
  static async open(cidr: string, logger: CoyoteLogger): Promise<ProcessUnitNetwork> {
    const find = (name: string, pkg: string) => {
      const dir = TOOL_DIRS.find((d) => existsSync(`${d}/${name}`));
      if (dir === undefined) throw new Error(`process unit networks need ${name} (Debian package ${pkg}), found in none of ${TOOL_DIRS.join(", ")}`);
      return `${dir}/${name}`;
    };
    const network = new ProcessUnitNetwork(cidr, { ip: find("ip", "iproute2"), unshare: find("unshare", "util-linux"), nsenter: find("nsenter", "util-linux"), setpriv: find("setpriv", "util-linux") });
    const { base, prefix } = parseUnitPool(cidr);
    const end = base + 2 ** (32 - prefix);
    for (const line of (await capture(network.tools.ip, ["-4", "route", "show", "table", "all"])).split("\n")) {
      const tokens = line.trim().split(/\s+/);
      const dest = ROUTE_TYPES.has(tokens[0] ?? "") ? tokens[1] : tokens[0];
      const dev = tokens[tokens.indexOf("dev") + 1];
      if (dest === undefined || dest === "" || dest === "default" || (tokens.includes("dev") && dev?.startsWith(HOST_LINK_PREFIX) === true)) continue;
      const [net, bits] = dest.split("/");
      const start = net === undefined ? undefined : ipv4ToInt(net);
      if (start === undefined) continue;
      const size = 2 ** (32 - (bits === undefined ? 32 : Number(bits)));
      if (start < end && start + size > base) throw new Error(`the process units' network ${cidr} overlaps the host's route ${line.trim()}; set COYOTE_PROCESS_UNIT_NETWORK to a free private range`);
    }
    logger.info({ network: cidr, slots: network.slots }, `process units run in network namespaces of their own, with addresses from ${cidr}`);
    return network;
  }

  /** `setpriv` down to the units' user, with no way back up. */
  #drop(user: { readonly uid: number; readonly gid: number }): string[] {
    return [this.tools.setpriv, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--no-new-privs", "--"];
  }

  /**
   * The command line that runs a unit's command in a new network namespace as the units' user,
   * once its network is made ({@link ProcessUnitNetwork.attach}) and "go" is written to its input.
   */
  launchCommand(user: { readonly uid: number; readonly gid: number }, command: readonly string[]): string[] {
    return [this.tools.unshare, "--net", "--", "/bin/sh", "-c", WAIT_FOR_NETWORK, "sh", ...this.#drop(user), ...command];
  }

  /** The command line that runs a command in the network namespace of process `pid`, as the units' user. */
  enterCommand(pid: number, user: { readonly uid: number; readonly gid: number }, command: readonly string[]): string[] {
    return [this.tools.nsenter, `--target=${pid}`, "--net", "--", ...this.#drop(user), ...command];
  }

  /** The link of a slot. */
  link(slot: number): UnitLink {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots) throw new Error(`unit network slot ${slot} is outside 0..${this.slots - 1}`);
    const net = this.#base + slot * 4;
    return { hostAddress: intToIpv4(net + 1), unitAddress: intToIpv4(net + 2), hostLink: `${HOST_LINK_PREFIX}${slot}` };
  }

  /**
   * The lowest slot not in use: not by this activator's units, and without a link on the host (a
   * unit of another activator, or a process that escaped its unit's stop and keeps its namespace).
   * @throws Error when every slot is taken.
   */
  freeSlot(used: ReadonlySet<number>): number {
    for (let slot = 0; slot < this.slots; slot++) if (!used.has(slot) && !existsSync(`/sys/class/net/${HOST_LINK_PREFIX}${slot}`)) return slot;
    throw new Error(`every one of the ${this.slots} unit networks of ${this.cidr} is in use`);
  }

  /**
   * Joins the network namespace of process `pid` (made by `unshare --net`) to the host with the
   * slot's link: addresses on both ends, the loopback up, IPv6 off on the link (no link-local
   * address to reach the host by), no route beyond the link.
   * @throws Error with the failing command's message.
   */
  async attach(pid: number, slot: number): Promise<UnitLink> {
    const link = this.link(slot);
    try {
      await run(this.tools.ip, ["-batch", "-"], [`link add ${link.hostLink} type veth peer name eth0 netns ${pid}`, `link set ${link.hostLink} addrgenmode none`, `addr add ${link.hostAddress}/30 dev ${link.hostLink}`, `link set ${link.hostLink} up`, ""].join("\n"));
      await run(this.tools.nsenter, [`--target=${pid}`, "--net", "--", this.tools.ip, "-batch", "-"], ["link set lo up", "link set eth0 addrgenmode none", `addr add ${link.unitAddress}/30 dev eth0`, "link set eth0 up", ""].join("\n"));
    } catch (error) {
      // The host's end goes with the namespace when the process dies; removing it now frees the slot at once.
      if (!/File exists/.test(errorText(error))) await run(this.tools.ip, ["link", "del", link.hostLink]).catch(() => undefined);
      throw new Error(`making the network of process ${pid}: ${errorText(error)}`, { cause: error });
    }
    return link;
  }
}
