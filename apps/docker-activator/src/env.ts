/**
 * docker-activator's environment, read here only (docs/CONTRIBUTING.md, "Conventions": one module per app reads
 * `process.env`); everything else takes it as options.
 */

import { DEFAULT_PROCESS_UNIT_NETWORK, parseUnitPool } from "./process-network.ts";

/** The default Docker engine socket. */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/** What docker-activator takes from its environment. */
export interface ActivatorEnv {
  /** The Docker engine socket: `COYOTE_DOCKER_SOCKET`, else a `unix://` `DOCKER_HOST`, else the default. */
  readonly dockerSocket: string;
  /** Variables every process unit inherits: PATH and the locale, nothing secret. */
  readonly baseEnv: Record<string, string>;
  /**
   * `COYOTE_UNIT_NETWORK`: `bridge` (the default, each container on the units' own network) or
   * `host`, the explicit fallback for an engine without a bridge driver.
   */
  readonly unitNetwork: "bridge" | "host";
  /** `COYOTE_UNIT_USER` (`uid:gid`): who units run as, containers and processes; unset for nobody. */
  readonly unitUser: { readonly uid: number; readonly gid: number } | undefined;
  /**
   * `COYOTE_PROCESS_UNIT_NETWORK`: the private IPv4 range process units get their own networks
   * from (default {@link DEFAULT_PROCESS_UNIT_NETWORK}), or `host`, the explicit fallback where
   * they share the host's network.
   */
  readonly processUnitNetwork: string;
}

/**
 * Reads the environment.
 * @param env normally `process.env`.
 * @throws Error for a `DOCKER_HOST` that is not a unix socket (the activator talks to a local
 *   engine only), a `COYOTE_UNIT_NETWORK` other than bridge or host, a `COYOTE_UNIT_USER` that is
 *   not an unprivileged numeric `uid:gid`, a `COYOTE_PROCESS_UNIT_NETWORK` that is neither `host`
 *   nor a private IPv4 range.
 */
export function readActivatorEnv(env: NodeJS.ProcessEnv = process.env): ActivatorEnv {
  let dockerSocket = env.COYOTE_DOCKER_SOCKET;
  if (dockerSocket === undefined || dockerSocket === "") {
    const host = env.DOCKER_HOST;
    if (host !== undefined && host !== "") {
      if (!host.startsWith("unix://")) throw new Error(`docker-activator environment: DOCKER_HOST ${host} is not a unix:// socket; set COYOTE_DOCKER_SOCKET to the local engine's socket`);
      dockerSocket = host.slice("unix://".length);
    } else dockerSocket = DEFAULT_DOCKER_SOCKET;
  }
  const baseEnv: Record<string, string> = { PATH: env.PATH ?? "/usr/local/bin:/usr/bin:/bin" };
  for (const name of ["LANG", "LC_ALL", "TZ"]) {
    const value = env[name];
    if (value !== undefined) baseEnv[name] = value;
  }
  const network = env.COYOTE_UNIT_NETWORK ?? "bridge";
  if (network !== "bridge" && network !== "host") throw new Error(`docker-activator environment: COYOTE_UNIT_NETWORK ${network} is neither bridge nor host`);
  let unitUser: ActivatorEnv["unitUser"];
  const user = env.COYOTE_UNIT_USER;
  if (user !== undefined && user !== "") {
    const match = /^(\d{1,10}):(\d{1,10})$/.exec(user);
    const [uid, gid] = [Number(match?.[1]), Number(match?.[2])];
    if (match === null || uid < 1 || gid < 1 || uid > 4294967294 || gid > 4294967294) throw new Error(`docker-activator environment: COYOTE_UNIT_USER ${user} is not an unprivileged numeric uid:gid`);
    unitUser = { uid, gid };
  }
  const processUnitNetwork = env.COYOTE_PROCESS_UNIT_NETWORK === undefined || env.COYOTE_PROCESS_UNIT_NETWORK === "" ? DEFAULT_PROCESS_UNIT_NETWORK : env.COYOTE_PROCESS_UNIT_NETWORK;
  if (processUnitNetwork !== "host") {
    try {
      parseUnitPool(processUnitNetwork);
    } catch (error) {
      throw new Error(`docker-activator environment: COYOTE_PROCESS_UNIT_NETWORK: ${(error as Error).message}, nor host`, { cause: error });
    }
  }
  return { dockerSocket, baseEnv, unitNetwork: network, unitUser, processUnitNetwork };
}
