import { createServer } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { connect } from "node:net";
import { chmod, lstat, unlink } from "node:fs/promises";
import type { CoyoteLogger } from "@coyote/log";
import { ActivityReport, readJsonText, validate, WakeRequest } from "@coyote/spec";
import type { Activator } from "./activator.ts";
import { ActivatorError, DockerActivatorError } from "./errors.ts";
import { errorText } from "./runtime.ts";

/** The largest request body the API reads; an activity report of ten thousand units fits. */
const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** A running control server. */
export interface ControlServer {
  /** The socket it listens on. */
  readonly socketPath: string;
  /** Stops listening, ends open connections and removes the socket file. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (status === 204) {
    res.writeHead(204).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
}

function sendError(res: ServerResponse, failure: ActivatorError): void {
  // Only a client meets a code without a status (it had no answer); the server never throws one.
  send(res, failure.status ?? 500, { error: { code: failure.code, message: failure.message.slice(0, 2000) } });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ActivatorError("BAD_REQUEST", `reading the request: the body is larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody<S extends Parameters<typeof validate>[0]>(schema: S, text: string, what: string): ReturnType<typeof validate<S>> {
  try {
    return validate(schema, readJsonText(text, what), what);
  } catch (error) {
    throw new ActivatorError("BAD_REQUEST", errorText(error), { cause: error });
  }
}

/** Whether something answers on a unix socket: a live activator must not lose its socket to a second one. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const done = (answer: boolean) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Starts the wake API (see `ACTIVATOR_SOCKET` in `@coyote/spec`) on a unix socket, mode 0600. A
 * socket file left by a dead activator is removed first; one that a live activator answers on is
 * not.
 * @throws DockerActivatorError SOCKET_IN_USE when another activator answers on the socket.
 */
export async function startControlServer(socketPath: string, activator: Activator, logger: CoyoteLogger): Promise<ControlServer> {
  const existing = await lstat(socketPath).catch(() => undefined);
  if (existing !== undefined) {
    if (existing.isSocket() && (await socketAnswers(socketPath))) {
      throw new DockerActivatorError("SOCKET_IN_USE", `starting the wake api: another docker-activator answers on ${socketPath}`);
    }
    await unlink(socketPath);
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "POST" && path === "/wake") {
      const body = parseBody(WakeRequest, await readBody(req), "POST /wake");
      send(res, 200, await activator.wake(body.unit, body.requestId));
    } else if (req.method === "POST" && path === "/activity") {
      activator.reportActivity(parseBody(ActivityReport, await readBody(req), "POST /activity"));
      send(res, 204, undefined);
    } else if (req.method === "GET" && path === "/units") {
      send(res, 200, { units: activator.stats() });
    } else {
      throw new ActivatorError("NOT_FOUND", `wake api: no endpoint ${req.method ?? "?"} ${path ?? "/"} (POST /wake, POST /activity, GET /units)`);
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const failure = error instanceof ActivatorError ? error : new ActivatorError("WAKE_FAILED", `wake api: ${errorText(error)}`, { cause: error });
      if (!(error instanceof ActivatorError)) logger.event("ERROR", { err: error }, failure.message);
      if (!res.headersSent) sendError(res, failure);
      else res.destroy();
    });
  });
  // Wakes wait for readiness, up to 600 s (the schema's bound): the default timeouts would cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o600);
  logger.info({ socket: socketPath }, `wake api listening on ${socketPath}`);
  return {
    socketPath,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await unlink(socketPath).catch(() => undefined);
    },
  };
}
