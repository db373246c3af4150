// The local CA's public files (its certificate and CRL), answered by snitch-proxy itself at fixed
// paths under /.well-known/coyote/ for any Host, over plain HTTP and HTTPS. snickers writes them
// into proxy/ca/; the proxy only reads them.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { CoyoteLogger } from "@coyote/log";
import type { Exchange } from "./exchange.ts";
import { LOCAL_CA_FILES, LOCAL_CA_FILE_MAX_BYTES, LOCAL_CA_URL_PREFIX, type LocalCaPublishedFile } from "@coyote/spec";

/** An answer to a request for one of the local CA's files. */
export interface WellKnownAnswer {
  readonly status: 200 | 404 | 405;
  readonly headers: Record<string, string | number>;
  /** Empty for HEAD and for refusals. */
  readonly body: Buffer;
  /** Why a file that should be there was not sent, for the log. */
  readonly problem?: string;
}

const PUBLISHED: ReadonlyMap<string, LocalCaPublishedFile> = new Map(Object.values(LOCAL_CA_FILES).map((file) => [file.urlPath, file]));
const NOT_FOUND = Buffer.from("not found\n");

const refusal = (status: 404 | 405, problem?: string): WellKnownAnswer => ({
  status,
  headers: { "content-type": "text/plain", "content-length": status === 404 ? NOT_FOUND.length : 0, "cache-control": "no-store", ...(status === 405 ? { allow: "GET, HEAD" } : {}) },
  body: status === 404 ? NOT_FOUND : Buffer.alloc(0),
  ...(problem === undefined ? {} : { problem }),
});

/**
 * Answers a request under `/.well-known/coyote/`, or returns undefined for any other path. Only the
 * fixed paths of {@link LOCAL_CA_FILES} are served (the request path is compared whole, never
 * joined to a folder); everything else under the prefix is a 404. A file is opened without
 * following a symbolic link and sent only when it is a regular file within
 * {@link LOCAL_CA_FILE_MAX_BYTES}.
 * @param caDir `proxy/ca/` of the state folder, where the local CA publishes its files.
 * @param url the request target, query included.
 */
export async function answerWellKnown(caDir: string, method: string, url: string): Promise<WellKnownAnswer | undefined> {
  if (!url.startsWith(LOCAL_CA_URL_PREFIX)) return undefined;
  const q = url.indexOf("?");
  const published = PUBLISHED.get(q < 0 ? url : url.slice(0, q));
  if (published === undefined) return refusal(404);
  if (method !== "GET" && method !== "HEAD") return refusal(405);
  const file = join(caDir, published.file);
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return refusal(404, code === "ENOENT" ? undefined : `${file}: ${code ?? (error as Error).message}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return refusal(404, `${file} is not a regular file`);
    if (stats.size > LOCAL_CA_FILE_MAX_BYTES) return refusal(404, `${file} is larger than ${LOCAL_CA_FILE_MAX_BYTES} bytes`);
    // Read only the size checked: a file replaced meanwhile is renamed over, never grown in place.
    const buffer = Buffer.alloc(stats.size);
    const { bytesRead } = await handle.read(buffer, 0, stats.size, 0);
    const body = buffer.subarray(0, bytesRead);
    return {
      status: 200,
      headers: { "content-type": published.contentType, "content-length": body.length, "cache-control": "max-age=300", "x-content-type-options": "nosniff" },
      body: method === "HEAD" ? Buffer.alloc(0) : body,
    };
  } finally {
    await handle.close();
  }
}

/** Sends an answer on whichever protocol the request came. */
export type WellKnownSend = (status: number, headers: Record<string, string | number>, body: Buffer) => void;

/**
 * Serves a request when it is under `/.well-known/coyote/`, in the background.
 * @returns whether it was (false: the caller goes on with the request).
 */
export function serveWellKnown(caDir: string, logger: CoyoteLogger, request: { method: string; url: string; requestId: string }, send: WellKnownSend, cutOff: () => void): boolean {
  if (!request.url.startsWith(LOCAL_CA_URL_PREFIX)) return false;
  answerWellKnown(caDir, request.method, request.url)
    .then((answer) => {
      if (answer === undefined) return;
      if (answer.problem !== undefined) logger.event("ERROR", { requestId: request.requestId, path: request.url.slice(0, 200) }, answer.problem);
      send(answer.status, { ...answer.headers, "x-request-id": request.requestId }, answer.body);
    })
    .catch((error: unknown) => {
      // Thrown while answering: this request is cut off; unhandled, it would end the process.
      logger.event("ERROR", { err: error, requestId: request.requestId }, "answering a request for the local CA's files");
      cutOff();
    });
  return true;
}

/** Answers a request for the local CA's files over HTTPS, for every host; never forwarded. */
export function answerLocalCa(exchange: Exchange, caDir: string, logger: CoyoteLogger, requestId: string): void {
  const { reply } = exchange;
  exchange.body?.stop();
  const send = (status: number, headers: Record<string, string | number>, body: Buffer) => {
    if (reply.done) return;
    reply.writeHead(status, headers);
    reply.end(body);
  };
  serveWellKnown(caDir, logger, { method: exchange.method, url: exchange.url, requestId }, send, () => reply.destroy());
}
