/**
 * docker-activator's environment, read here only (CONVENTIONS.md: one module per app reads
 * `process.env`); everything else takes it as options.
 */

/** The default Docker engine socket. */
export const DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock";

/** What docker-activator takes from its environment. */
export interface ActivatorEnv {
  /** The Docker engine socket: `COYOTE_DOCKER_SOCKET`, else a `unix://` `DOCKER_HOST`, else the default. */
  readonly dockerSocket: string;
  /** Variables every process unit inherits: PATH and the locale, nothing secret. */
  readonly baseEnv: Record<string, string>;
}

/**
 * Reads the environment.
 * @param env normally `process.env`.
 * @throws Error for a `DOCKER_HOST` that is not a unix socket (the activator talks to a local engine only).
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
  return { dockerSocket, baseEnv };
}
