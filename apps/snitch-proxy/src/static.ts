import { createReadStream, type ReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { extname, join, sep } from "node:path";
import type { CoyoteLogger } from "@coyote/log";
import type { Exchange } from "./exchange.ts";
import { answerPage } from "./forward.ts";
import { HSTS } from "./headers.ts";

// Static sites: the file for a request (never outside the site's folder) and the answer streamed
// with back-pressure, on whichever protocol the request came.

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".pdf": "application/pdf",
  ".xml": "application/xml",
  ".wasm": "application/wasm",
};

/** Whether a resolved path is a folder or the folder itself. */
const within = (path: string, folder: string) => path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);

/** What the static handler decided for one request. */
export type StaticAnswer =
  | { readonly status: 200 | 304; readonly headers: Record<string, string | number>; readonly file?: string; readonly size: number }
  | { readonly status: 301; readonly headers: Record<string, string> }
  | { readonly status: 404 | 405 };

/**
 * Finds the file for a request to a static site: GET and HEAD only, the path decoded once,
 * `index.html` for a folder, and nothing outside the root, not even through a symbolic link.
 * @param root the site's folder.
 * @param jail the folder the root itself must resolve into (the service's `sites/<id>`): a root
 *   that is, or passes through, a symbolic link out of it serves nothing, so a customer who can
 *   write into their site folder cannot publish the rest of the box.
 * @param pathname the request path, without the query.
 * @param ifNoneMatch the request's `If-None-Match`, for a 304.
 */
export async function resolveStatic(root: string, jail: string, method: string, pathname: string, ifNoneMatch: string | undefined): Promise<StaticAnswer> {
  if (method !== "GET" && method !== "HEAD") return { status: 405 };
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return { status: 404 };
  }
  if (decoded.includes("\0") || decoded.split("/").some((part) => part === ".." || part.includes("\\"))) return { status: 404 };
  let realRoot: string;
  let real: string;
  try {
    const realJail = await realpath(jail);
    realRoot = await realpath(root);
    if (!within(realRoot, realJail)) return { status: 404 };
    real = await realpath(join(realRoot, decoded));
  } catch {
    return { status: 404 };
  }
  if (!within(real, realRoot)) return { status: 404 };
  let info = await stat(real);
  if (info.isDirectory()) {
    if (!pathname.endsWith("/")) return { status: 301, headers: { location: `${pathname}/` } };
    real = join(real, "index.html");
    try {
      info = await stat(real);
    } catch {
      return { status: 404 };
    }
  }
  if (!info.isFile()) return { status: 404 };
  const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    "content-type": TYPES[extname(real).toLowerCase()] ?? "application/octet-stream",
    etag,
    "last-modified": info.mtime.toUTCString(),
    "cache-control": "no-cache",
  };
  if (ifNoneMatch !== undefined && ifNoneMatch.split(",").some((tag) => tag.trim() === etag)) return { status: 304, headers, size: 0 };
  headers["content-length"] = info.size;
  return { status: 200, headers, file: real, size: info.size };
}

/** Opens the file of a 200 answer for streaming. */
export function openStatic(file: string): ReadStream {
  return createReadStream(file);
}

/**
 * Answers a request routed to a static site, in the background: the file streamed with
 * back-pressure, a 304, a redirect to the folder's slash, a 404 or a 405. A request body means
 * nothing to a static site; it is not read.
 * @param sent counts the bytes of the file sent (the request's `bytesOut`).
 */
export function answerStatic(exchange: Exchange, root: string, jail: string, requestId: string, hsts: boolean, sent: { bytesOut: number }, logger: CoyoteLogger): void {
  const { reply, url, method } = exchange;
  exchange.body?.stop();
  const q = url.indexOf("?");
  const pathname = q < 0 ? url : url.slice(0, q);
  const inm = exchange.headers["if-none-match"];
  resolveStatic(root, jail, method, pathname, typeof inm === "string" ? inm : undefined).then(
    (answer) => {
      if (reply.done) return;
      if (!("headers" in answer)) {
        if (answer.status === 404) {
          answerPage(reply, 404, requestId);
          return;
        }
        reply.writeHead(405, { allow: "GET, HEAD", "content-length": 0, "x-request-id": requestId });
        reply.end();
        return;
      }
      reply.writeHead(answer.status, { ...answer.headers, "x-request-id": requestId, ...(hsts ? { "strict-transport-security": HSTS } : {}) });
      if (answer.status !== 200 || answer.file === undefined || method === "HEAD") {
        reply.end();
        return;
      }
      sent.bytesOut += answer.size;
      const stream = openStatic(answer.file);
      stream.on("data", (chunk: Buffer | string) => {
        try {
          if (reply.write(chunk as Buffer)) return;
          stream.pause();
          reply.onDrain(() => stream.resume());
        } catch (error) {
          logger.event("ERROR", { err: error, requestId, root }, "sending a static file");
          stream.destroy();
          reply.destroy();
        }
      });
      stream.once("end", () => reply.end());
      stream.once("error", () => reply.destroy());
      reply.onClose(() => stream.destroy());
    },
    (error: unknown) => {
      logger.event("ERROR", { err: error, requestId, root }, "serving a static file");
      answerPage(reply, 404, requestId);
    },
  ).catch((error: unknown) => {
    // Thrown while answering: this request is cut off; unhandled, it would end the process.
    logger.event("ERROR", { err: error, requestId, root }, "answering a static request");
    reply.destroy();
  });
}
