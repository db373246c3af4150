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
  const made = { ...c, networkName: c.network === "bridge" ? networkName : null };
  return createHash("sha256").update(JSON.stringify(made)).digest("hex").slice(0, 12);
}

/**
 * The parts of a container's create options that confine it: host config, the exposed port and
 * the user. Pure.
 * @throws Error for a unit whose address is not a loopback one: its port would be published to
 *   the world, past snitch-proxy.
 */
export function confinedContainer(unit: Unit, c: ContainerConfinement, networkName: string): Pick<Docker.ContainerCreateOptions, "HostConfig" | "ExposedPorts" | "User"> {
  if (c.network === "bridge" && !unit.host.startsWith("127.")) throw new Error(`unit ${unit.id}: its address ${unit.host} is not a loopback address; a unit's port is published on loopback only, where snitch-proxy dials it`);
  const portKey = `${unit.port}/tcp`;
  const network: Docker.HostConfig =
    c.network === "bridge"
      ? // Published on the unit's loopback address only, where snitch-proxy dials it.
        { NetworkMode: networkName, PortBindings: { [portKey]: [{ HostIp: unit.host, HostPort: String(unit.port) }] } }
      : { NetworkMode: "host" };
  return {
    User: c.user,
    ...(c.network === "bridge" ? { ExposedPorts: { [portKey]: {} } } : {}),
    HostConfig: {
      ...network,
      Memory: unit.memoryMb * MIB,
      // No swap beyond the limit: the budget counts memory, and swapping would hide it.
      MemorySwap: unit.memoryMb * MIB,
      NanoCpus: Math.round(c.cpus * 1e9),
      PidsLimit: c.pidsLimit,
      CapDrop: ["ALL"],
      SecurityOpt: ["no-new-privileges"],
      ReadonlyRootfs: c.readonlyRootfs,
      // The engine copies the image's /tmp onto the tmpfs, mode included; `mode` counts where it does not.
      ...(c.readonlyRootfs ? { Tmpfs: { "/tmp": `rw,nosuid,nodev,size=${c.tmpMb}m,mode=1777` } } : {}),
      Init: true,
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
