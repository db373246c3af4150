import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import Docker from "dockerode";
import { DockerActivatorError } from "./errors.ts";
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
 * @throws DockerActivatorError ENGINE_UNAVAILABLE naming the socket and why.
 */
export async function pingEngine(socketPath: string, timeoutMs = 3000): Promise<void> {
  const docker = new Docker({ socketPath });
  try {
    await bounded(docker.ping(), timeoutMs, `pinging ${socketPath}`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DockerActivatorError("ENGINE_UNAVAILABLE", `docker runtime: no Docker engine answers on ${socketPath} (${code ?? errorText(error)})`, { cause: error });
  }
}

/** How {@link runDumpExec} bounds and names its engine calls. */
export interface DumpExecOptions {
  /** When the dump must be done (`performance.now()` time). */
  readonly until: number;
  /** The dump's whole timeout, for the messages. */
  readonly timeoutMs: number;
  /** The unit, for the messages. */
  readonly unitId: string;
  /** Runs one engine call within the runtime's deadline. */
  call<T>(promise: Promise<T>, what: string): Promise<T>;
}

/**
 * Runs a dump command in a unit's running container and waits for it to exit.
 * @throws Error naming the command when it exits non-zero (with the end of its stderr) or does not
 *   finish in time.
 */
export async function runDumpExec(docker: Docker, container: Docker.Container, command: readonly string[], options: DumpExecOptions): Promise<void> {
  const { until, timeoutMs, unitId: id } = options;
  const exec = await options.call(container.exec({ Cmd: [...command], AttachStdout: true, AttachStderr: true }), `creating the dump exec of unit ${id}`);
  const stream = await options.call(exec.start({ hijack: true, stdin: false }), `starting the dump exec of unit ${id}`);
  let stderr = "";
  const errSink = new PassThrough();
  errSink.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-1000);
  });
  const outSink = new PassThrough();
  outSink.resume();
  docker.modem.demuxStream(stream, outSink, errSink);
  const ended = new Promise<void>((resolve) => {
    stream.once("end", resolve);
    stream.once("close", resolve);
    stream.once("error", () => resolve());
  });
  try {
    await bounded(ended, Math.max(1, until - performance.now()), "the dump");
  } catch {
    stream.destroy();
    throw new Error(`the dump command ${command.join(" ")} did not finish within ${timeoutMs} ms`);
  }
  // The stream ends when the command does; the exit code may lag a moment behind in the engine.
  for (;;) {
    const info = await options.call(exec.inspect(), `inspecting the dump exec of unit ${id}`);
    if (!info.Running) {
      if (info.ExitCode === 0) return;
      throw new Error(`the dump command ${command.join(" ")} exited with code ${String(info.ExitCode)}${stderr.trim() === "" ? "" : `: ${stderr.trim()}`}`);
    }
    if (performance.now() >= until) throw new Error(`the dump command ${command.join(" ")} did not finish within ${timeoutMs} ms`);
    await sleep(20);
  }
}
