import { request, Agent } from "node:http";
import { join } from "node:path";
import { ACTIVATOR_SOCKET, ControlError, WakeResponse, type ActivityReport } from "./runtime.ts";
import { parseJson } from "./validate.ts";

/** Why a wake failed, as the wake API says it (`run/docker-activator.sock`, docs/ARCHITECTURE.md). */
export type WakeErrorCode = "UNIT_UNKNOWN" | "WAKE_FAILED" | "WAKE_TIMEOUT" | "ACTIVATOR_UNREACHABLE" | "BAD_ANSWER";

/** A failed call to docker-activator's control API. */
export class ActivatorError extends Error {
  /** What went wrong, for callers that choose an answer by it (503 or 504). */
  readonly code: WakeErrorCode;

  /**
   * Makes the error.
   * @param code what went wrong.
   * @param message a lowercase message naming the unit.
   * @param options the cause.
   */
  constructor(code: WakeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ActivatorError";
    this.code = code;
  }
}

/**
 * The client side of docker-activator's wake API: what snitch-proxy (and the tests) use. One
 * keep-alive agent, so that a stream of wakes and activity reports reuses its socket.
 */
export class ActivatorClient {
  readonly #socketPath: string;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });

  /**
   * Makes a client for the activator of one state folder.
   * @param stateDir the state folder; the socket is `run/docker-activator.sock` in it.
   */
  constructor(stateDir: string) {
    this.#socketPath = join(stateDir, ACTIVATOR_SOCKET);
  }

  /** The socket the client talks to. */
  get socketPath(): string {
    return this.#socketPath;
  }

  /**
   * Asks for a unit to be running and waits until it is ready.
   * @param unit the unit id.
   * @param options `timeoutMs` bounds the whole wait (the caller's own bound, on top of the
   *   unit's readiness timeout); `requestId` is logged with the wake.
   * @throws ActivatorError with the API's code, or ACTIVATOR_UNREACHABLE.
   */
  async wake(unit: string, options: { timeoutMs: number; requestId?: string }): Promise<WakeResponse> {
    const body = JSON.stringify({ unit, ...(options.requestId ? { requestId: options.requestId } : {}) });
    const { status, text } = await this.#call("POST", "/wake", body, options.timeoutMs, unit);
    if (status === 200) return parseJson(WakeResponse, text, "docker-activator /wake");
    throw errorFrom(status, text, unit);
  }

  /** Reports the traffic seen since the previous report. */
  async reportActivity(report: ActivityReport, timeoutMs = 2000): Promise<void> {
    const { status, text } = await this.#call("POST", "/activity", JSON.stringify(report), timeoutMs, "activity");
    if (status !== 204 && status !== 200) throw errorFrom(status, text, "activity");
  }

  /** Reads the units and their state. */
  async units(timeoutMs = 2000): Promise<unknown> {
    const { status, text } = await this.#call("GET", "/units", undefined, timeoutMs, "units");
    if (status !== 200) throw errorFrom(status, text, "units");
    return JSON.parse(text) as unknown;
  }

  /** Closes the kept-alive sockets. */
  close(): void {
    this.#agent.destroy();
  }

  #call(method: string, path: string, body: string | undefined, timeoutMs: number, what: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.#socketPath,
        agent: this.#agent,
        method,
        path,
        headers: body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        signal: AbortSignal.timeout(timeoutMs),
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      req.on("error", (error: NodeJS.ErrnoException) => {
        if (error.name === "AbortError" || error.name === "TimeoutError") {
          reject(new ActivatorError("WAKE_TIMEOUT", `docker-activator: ${what} did not answer within ${timeoutMs} ms`, { cause: error }));
        } else {
          reject(new ActivatorError("ACTIVATOR_UNREACHABLE", `docker-activator: cannot reach ${this.#socketPath} (${error.code ?? error.message}); is docker-activator running?`, { cause: error }));
        }
      });
      req.end(body);
    });
  }
}

function errorFrom(status: number, text: string, what: string): ActivatorError {
  try {
    const parsed = parseJson(ControlError, text, "docker-activator");
    const code = parsed.error.code;
    const known: WakeErrorCode[] = ["UNIT_UNKNOWN", "WAKE_FAILED", "WAKE_TIMEOUT"];
    return new ActivatorError(known.includes(code as WakeErrorCode) ? (code as WakeErrorCode) : "WAKE_FAILED", parsed.error.message);
  } catch {
    return new ActivatorError("BAD_ANSWER", `docker-activator: ${what}: unexpected answer ${status}: ${text.slice(0, 200)}`);
  }
}
