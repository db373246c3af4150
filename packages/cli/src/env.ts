import { basename, dirname, resolve } from "node:path";

/**
 * Everything the CLI takes from the environment, read and checked in this one module
 * (docs/CONTRIBUTING.md, "Conventions": only `env.ts` reads `process.env`); the rest of the CLI takes it as arguments.
 */
export interface CliEnv {
  /** The Coyote checkout or install folder (where `./coyote`, `package.json` and `tooling/` are). */
  readonly home: string;
  /** The state folder (`COYOTE_STATE`): `./.coyote` in a checkout unless set. */
  readonly stateDir: string;
  /** Whether this runs in CI (`CI=true`): a missing dependency is then a failure, never a skip. */
  readonly ci: boolean;
  /** The author of spec changes made from this shell, `Name <email>`, when `COYOTE_AUTHOR` is set. */
  readonly author: string | undefined;
  /** Whether output may use colours. */
  readonly color: boolean;
  /** The Docker engine's unix socket, from `DOCKER_HOST` (unix:// only) or the default path. */
  readonly dockerSocket: string;
  /** The process's full environment, handed to the child processes the CLI runs. */
  readonly processEnv: Readonly<Record<string, string | undefined>>;
}

/**
 * The checkout this module belongs to, found from where the module is: `<home>/dist/` when it runs
 * from the bundle (`npm run build` writes `dist/coyote.mjs` and its chunks there), and
 * `<home>/packages/cli/src/` when it runs from its TypeScript source.
 * @param moduleDir the folder of the running module (`import.meta.dirname`).
 */
export function homeOf(moduleDir: string): string {
  return basename(moduleDir) === "dist" ? dirname(moduleDir) : resolve(moduleDir, "..", "..", "..");
}

/** Reads the CLI's environment from `env` (normally `process.env`). */
export function readEnv(env: Readonly<Record<string, string | undefined>>, isTty: boolean): CliEnv {
  const home = resolve(env.COYOTE_HOME ?? homeOf(import.meta.dirname));
  return {
    home,
    stateDir: resolve(env.COYOTE_STATE ?? resolve(home, ".coyote")),
    ci: env.CI === "true" || env.CI === "1",
    author: env.COYOTE_AUTHOR,
    color: isTty && env.NO_COLOR === undefined && env.TERM !== "dumb",
    dockerSocket: env.DOCKER_HOST?.startsWith("unix://") ? env.DOCKER_HOST.slice("unix://".length) : "/var/run/docker.sock",
    processEnv: env,
  };
}

/** Reads the CLI's environment from this process's own. */
export function readProcessEnv(): CliEnv {
  return readEnv(process.env, process.stdout.isTTY);
}
