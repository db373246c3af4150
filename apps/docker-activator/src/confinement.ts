import { createHash } from "node:crypto";
import type Docker from "dockerode";
import type { Unit } from "./runtime.ts";

/**
 * How a unit's container is confined. A hosted app is a stranger's code: it gets its own network
 * with only its port published, no capabilities, no privilege gain, a non-root user, a read-only
 * root file system and bounded processes, memory and CPU.
 */
export interface ContainerConfinement {
  /**
   * `bridge` (the default): the units' own bridge network, with only the unit's port published on
   * its loopback address, so that a unit neither sees the host's loopback (the panel, the other
   * daemons) nor can take another unit's port. `host` shares the host's network and is only for
   * an engine without a bridge driver; it is logged as a warning at start.
   */
  readonly network: "bridge" | "host";
  /** The bridge network's name (default `coyote-units-<scope>`); made by the runtime when missing. */
  readonly networkName?: string;
  /** The `uid:gid` the app runs as (default `65534:65534`, nobody). */
  readonly user: string;
  /** The most processes and threads a unit may have at once (default 256): a fork bomb stops there. */
  readonly pidsLimit: number;
  /** The CPUs a unit may use (default 1). */
  readonly cpus: number;
  /** Whether the root file system is read-only (default true); `/tmp` is then a tmpfs. */
  readonly readonlyRootfs: boolean;
  /** The size of the `/tmp` tmpfs in MiB (default 64); it counts against the unit's memory. */
  readonly tmpMb: number;
}

/** The defaults of {@link ContainerConfinement}. */
export const DEFAULT_CONFINEMENT: ContainerConfinement = { network: "bridge", user: "65534:65534", pidsLimit: 256, cpus: 1, readonlyRootfs: true, tmpMb: 64 };

/** The label holding {@link confinementStamp}: a container confined otherwise is made anew. */
export const CONFINEMENT_LABEL = "coyote.confinement";

/** Where an app in a bridged container listens: every address of its own network namespace. */
export const BRIDGE_LISTEN_HOST = "0.0.0.0";

const MIB = 1024 * 1024;

/**
 * Checks a confinement given by the operator.
 * @throws Error naming the field that is wrong.
 */
export function checkConfinement(c: ContainerConfinement): ContainerConfinement {
  // Settings come from the operator's environment: check even what the type already says.
  const network: string = c.network;
  if (network !== "bridge" && network !== "host") throw new Error(`container confinement: network must be "bridge" or "host", not ${JSON.stringify(c.network)}`);
  if (!/^\d{1,10}:\d{1,10}$/.test(c.user)) throw new Error(`container confinement: user must be a numeric uid:gid, not ${JSON.stringify(c.user)}`);
  // Root is refused outright: a numeric 0 in either place hands the app the engine's root.
  if (c.user.split(":").some((part) => Number(part) === 0)) throw new Error(`container confinement: user ${c.user} is root; units run as an unprivileged user`);
  if (!Number.isInteger(c.pidsLimit) || c.pidsLimit < 8 || c.pidsLimit > 65536) throw new Error(`container confinement: pidsLimit must be an integer from 8 to 65536, not ${String(c.pidsLimit)}`);
  if (!Number.isFinite(c.cpus) || c.cpus < 0.01 || c.cpus > 1024) throw new Error(`container confinement: cpus must be from 0.01 to 1024, not ${String(c.cpus)}`);
  if (!Number.isInteger(c.tmpMb) || c.tmpMb < 1 || c.tmpMb > 65536) throw new Error(`container confinement: tmpMb must be an integer from 1 to 65536, not ${String(c.tmpMb)}`);
  if (c.networkName !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(c.networkName)) throw new Error(`container confinement: networkName ${JSON.stringify(c.networkName)} is not a Docker network name`);
  return c;
}

/** A short fingerprint of a confinement, kept in {@link CONFINEMENT_LABEL}. */
export function confinementStamp(c: ContainerConfinement, networkName: string): string {
  // `netns`: how a bridged unit gets its network; a container made the older way is made anew.
  const made = { ...c, networkName: c.network === "bridge" ? networkName : null, netns: c.network === "bridge" ? "holder" : null };
  return createHash("sha256").update(JSON.stringify(made)).digest("hex").slice(0, 12);
}

/** Throws for a bridged unit whose address is not a loopback one: its port would be published to the world. */
function checkLoopback(unit: Unit, c: ContainerConfinement): void {
  if (c.network === "bridge" && !unit.host.startsWith("127.")) throw new Error(`unit ${unit.id}: its address ${unit.host} is not a loopback address; a unit's port is published on loopback only, where snitch-proxy dials it`);
}

/** The limits and privileges every container of a unit (the app and its network holder) runs under. */
function confinedHost(c: ContainerConfinement): Docker.HostConfig {
  return {
    PidsLimit: c.pidsLimit,
    CapDrop: ["ALL"],
    SecurityOpt: ["no-new-privileges"],
    ReadonlyRootfs: c.readonlyRootfs,
    Init: true,
  };
}

/** The memory (MiB), CPUs and processes of a network holder, which only sleeps. */
export const HOLDER_LIMITS = { memoryMb: 8, cpus: 0.05, pids: 8 } as const;

/**
 * The create options of a unit's network holder: the container that owns the unit's network
 * namespace on the units' bridge, with the unit's port published on its loopback address, and
 * that stays up while the app sleeps, so that a wake only starts the app in a namespace that is
 * already there (no new namespace, veth or port proxy per wake). Confined as the app is, with
 * tiny limits. Pure.
 * @throws Error for a unit whose address is not a loopback one.
 */
export function holderContainer(unit: Unit, c: ContainerConfinement, networkName: string): Pick<Docker.ContainerCreateOptions, "HostConfig" | "ExposedPorts" | "User"> {
  checkLoopback(unit, c);
  const portKey = `${unit.port}/tcp`;
  return {
    User: c.user,
    ExposedPorts: { [portKey]: {} },
    HostConfig: {
      ...confinedHost(c),
      // Published on the unit's loopback address only, where snitch-proxy dials it.
      NetworkMode: networkName,
      PortBindings: { [portKey]: [{ HostIp: unit.host, HostPort: String(unit.port) }] },
      Memory: HOLDER_LIMITS.memoryMb * MIB,
      MemorySwap: HOLDER_LIMITS.memoryMb * MIB,
      NanoCpus: Math.round(HOLDER_LIMITS.cpus * 1e9),
      PidsLimit: HOLDER_LIMITS.pids,
      // Up again after an engine restart: the unit's port stays published while the app sleeps.
      RestartPolicy: { Name: "unless-stopped" },
    },
  };
}

/**
 * The parts of a unit container's create options that confine it: host config and the user. A
 * bridged unit joins its network holder's namespace (`holderId`, see {@link holderContainer}),
 * which publishes its port. Pure.
 * @throws Error for a unit whose address is not a loopback one, or a bridged unit without a holder.
 */
export function confinedContainer(unit: Unit, c: ContainerConfinement, holderId: string | undefined): Pick<Docker.ContainerCreateOptions, "HostConfig" | "User"> {
  checkLoopback(unit, c);
  let networkMode = "host";
  if (c.network === "bridge") {
    if (holderId === undefined || !/^[0-9a-f]{12,64}$/.test(holderId)) throw new Error(`unit ${unit.id}: a bridged unit joins its network holder's namespace, and ${JSON.stringify(holderId)} is not a container id`);
    networkMode = `container:${holderId}`;
  }
  return {
    User: c.user,
    HostConfig: {
      ...confinedHost(c),
      NetworkMode: networkMode,
      Memory: unit.memoryMb * MIB,
      // No swap beyond the limit: the budget counts memory, and swapping would hide it.
      MemorySwap: unit.memoryMb * MIB,
      NanoCpus: Math.round(c.cpus * 1e9),
      // The engine copies the image's /tmp onto the tmpfs, mode included; `mode` counts where it does not.
      ...(c.readonlyRootfs ? { Tmpfs: { "/tmp": `rw,nosuid,nodev,size=${c.tmpMb}m,mode=1777` } } : {}),
      RestartPolicy: { Name: "no" },
    },
  };
}

function statusCode(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

/**
 * Makes the units' bridge network when it is missing; an existing one must be a bridge.
 * @throws Error naming the network when the engine refuses it or it is not a bridge.
 */
export async function ensureUnitsNetwork(docker: Docker, name: string, labels: Record<string, string>): Promise<void> {
  try {
    const info = (await docker.getNetwork(name).inspect()) as { Driver?: string };
    if (info.Driver !== "bridge") throw new Error(`docker network ${name} exists with driver ${info.Driver ?? "(none)"}, not bridge; remove it or name another network`);
    return;
  } catch (error) {
    if (statusCode(error) !== 404) throw error;
  }
  try {
    // Units do not talk to each other: inter-container traffic is refused (by the engine's
    // firewall rules where it manages them).
    await docker.createNetwork({ Name: name, Driver: "bridge", CheckDuplicate: true, Labels: labels, Options: { "com.docker.network.bridge.enable_icc": "false" } });
  } catch (error) {
    if (statusCode(error) === 409) return; // made meanwhile by a concurrent ensure
    throw new Error(`creating docker network ${name}: ${(error as Error).message}`, { cause: error });
  }
}
