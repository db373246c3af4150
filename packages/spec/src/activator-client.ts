import { request, Agent } from "node:http";
import { join } from "node:path";
import { codedErrors } from "@coyote/log";
import catalogue from "./activator-client-errors.json" with { type: "json" };
import { ACTIVATOR_SOCKET, ControlError, WakeResponse, type ActivityReport } from "./runtime.ts";
import { parseJson } from "./validate.ts";

/**
 * The error codes of docker-activator's wake API (`run/docker-activator.sock`,
 * docs/ARCHITECTURE.md), the one catalogue both sides use: the activator answers with the first
 * five and their HTTP status (a {@link ControlError} body); a client meets the last two before it
 * has an answer it can read.
 */
export const ACTIVATOR_ERRORS = catalogue;

/** A code from {@link ACTIVATOR_ERRORS}. */
export type ActivatorErrorCode = keyof typeof ACTIVATOR_ERRORS;

/** The codes a wake answers with and a client passes on as they are; any other becomes WAKE_FAILED. */
const WAKE_ANSWER_CODES: ReadonlySet<string> = new Set<ActivatorErrorCode>(["UNIT_UNKNOWN", "WAKE_FAILED", "WAKE_TIMEOUT"]);

/**
 * An error of the wake API, on both of its sides: docker-activator throws it and answers with its
 * code and status; {@link ActivatorClient} rebuilds it from the answer, so that a caller chooses
 * by `code` (snitch-proxy answers 504 to WAKE_TIMEOUT, 503 to the rest).
 */
export class ActivatorError extends codedErrors("ActivatorError", ACTIVATOR_ERRORS) {}

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
    return new ActivatorError(WAKE_ANSWER_CODES.has(code) ? (code as ActivatorErrorCode) : "WAKE_FAILED", parsed.error.message);
  } catch {
    return new ActivatorError("BAD_ANSWER", `docker-activator: ${what}: unexpected answer ${status}: ${text.slice(0, 200)}`);
  }
}
