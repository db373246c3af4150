import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { ActivatorFailure } from "./errors.ts";
import { errorText } from "./runtime.ts";

/** The HTTP status of an engine error, if it has one. */
export function statusCode(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

/** The engine's own message of an error, else the error's text. */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: unknown } } | null)?.json;
  return typeof json?.message === "string" ? json.message : errorText(error);
}

/** `promise`, or an error naming `what` once `ms` have passed. */
export async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const controller = new AbortController();
  try {
    return await Promise.race([
      promise,
      sleep(ms, undefined, { signal: controller.signal }).then(() => {
        throw new Error(`${what}: the Docker engine did not answer within ${ms} ms`);
      }),
    ]);
  } finally {
    controller.abort();
  }
}

/**
 * Checks that a Docker engine answers on a socket.
 * @throws ActivatorFailure ENGINE_UNAVAILABLE naming the socket and why.
 */
export async function pingEngine(socketPath: string, timeoutMs = 3000): Promise<void> {
  const docker = new Docker({ socketPath });
  try {
    await bounded(docker.ping(), timeoutMs, `pinging ${socketPath}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ActivatorFailure("ENGINE_UNAVAILABLE", `docker runtime: no Docker engine answers on ${socketPath} (${code ?? errorText(error)})`, { cause: error });
  }
}
