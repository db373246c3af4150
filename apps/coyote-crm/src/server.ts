import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { CoyoteLogger } from "@coyote/log";
import { specPath, type StateStore } from "@coyote/spec";
import { cookieHeader, parseCookies } from "./lib/cookies.ts";
import { crmEnv, exportCrmEnv } from "./lib/env.ts";
import { answerMailLookup, MailDomains, mailLookupOf } from "./lib/mail-lookups.ts";
import { clientAddress, forwardingSecret, HSTS, originsFor, ownHosts, proxiedOverHttps, type OwnHosts } from "./lib/forwarding.ts";
import { CrmError } from "./lib/errors.ts";
import { decide, isAsset } from "./lib/gate.ts";
import { closeCrmDb, crmDb } from "./lib/instance.ts";
import { setScryptParams, type ScryptParams } from "./lib/passwords.ts";
import { encodePath, normalisePath } from "./lib/paths.ts";
import { sampleStats } from "./lib/sampler.ts";
import { csrfCookieName, findSession, newToken, sessionCookieName } from "./lib/sessions.ts";
import { setVerificationCaps, verificationsBusy, type SlotCaps } from "./lib/signin.ts";
import { readServer, stateStore } from "./lib/state.ts";

/** The app's folder (where `.next/` is built). */
export const APP_DIR = dirname(dirname(fileURLToPath(import.meta.url)));

/** Options of {@link startCrm}. */
export interface CrmServerOptions {
  readonly stateDir: string;
  readonly logger: CoyoteLogger;
  /** Listen address (default 127.0.0.1). */
  readonly host?: string;
  /** Port (default: the server spec's `ports.panel`). */
  readonly port?: number;
  /** How often the daemons' stats are sampled for the charts (default 5000 ms). */
  readonly sampleIntervalMs?: number;
  /** Cookies with `Secure` (default: on, unless `COYOTE_CRM_INSECURE_COOKIES=1`; see env.ts). */
  readonly secureCookies?: boolean;
  /**
   * The scrypt parameters of new password hashes (default: passwords.ts's SCRYPT_DEFAULT). Only
   * tests lower them, to spare the 128 MiB and the time a production hash takes.
   */
  readonly scrypt?: ScryptParams;
  /** How many password checks may run at once (default: signin.ts's VERIFY_SLOTS and ACCOUNT_SLOTS). */
  readonly verificationSlots?: SlotCaps;
}

/** A running crm. */
export interface RunningCrm {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The headers every answer carries. Next's hydration needs inline scripts, hence 'unsafe-inline'. */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function originOf(req: IncomingMessage): string | undefined {
  const origin = req.headers.origin;
  if (typeof origin === "string" && origin !== "null") return origin;
  const referer = req.headers.referer;
  if (typeof referer === "string") {
    try {
      return new URL(referer).origin;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A refusal before any session or path is looked at: a request the panel cannot or will not read. */
function refuse(res: ServerResponse, status: 400 | 421 | 429, message: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", connection: "close", ...extra }).end(`${message}\n`);
}

// Form posts that make the panel check a password (sign-in, activation, signup).
const VERIFYING_PATHS = new Set(["/login", "/activate", "/signup"]);

function deny(req: IncomingMessage, res: ServerResponse, status: 401 | 403, reason: string, path: string): void {
  const wantsJson = path.startsWith("/api/") || !(req.headers.accept ?? "").includes("text/html");
  if (wantsJson) {
    const body = JSON.stringify({ error: { code: status === 401 ? "UNAUTHENTICATED" : "FORBIDDEN", message: reason } });
    res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json", "cache-control": "no-store" }).end(body);
    return;
  }
  const title = status === 401 ? "Sign in required" : "Not allowed";
  const link = status === 401 ? `<p><a href="/login?next=${encodeURIComponent(path)}">Sign in</a></p>` : `<p><a href="/">Back to the start page</a></p>`;
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${status} ${title}</title><style>body{font:16px system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d2430}h1{font-size:1.5rem}</style></head><body><h1>${status} — ${title}</h1><p>${escapeHtml(reason)}.</p>${link}</body></html>`;
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(body);
}

/**
 * Starts the panel: the built Next.js app behind a gate that decides access before the app sees a
 * request (see lib/gate.ts), and the stats sampler that keeps the charts' history.
 * @throws CrmError CRM_ERR_NOT_BUILT when the app is not built (`npm run build` in apps/coyote-crm).
 */
export async function startCrm(options: CrmServerOptions): Promise<RunningCrm> {
  const { logger } = options;
  const secure = options.secureCookies ?? crmEnv().secureCookies;
  exportCrmEnv(options.stateDir, secure);
  const buildId = await stat(`${APP_DIR}/.next/BUILD_ID`).catch(() => undefined);
  if (buildId === undefined) throw new CrmError("CRM_ERR_NOT_BUILT", `starting coyote-crm: the app is not built (no ${APP_DIR}/.next/BUILD_ID); run npm run build in apps/coyote-crm, or coyote up, which builds`);

  if (options.scrypt !== undefined) setScryptParams(options.scrypt);
  if (options.verificationSlots !== undefined) setVerificationCaps(options.verificationSlots);
  const store: StateStore = await stateStore(options.stateDir);
  const db = crmDb();
  const forwarding = await forwardingSecret(store);
  const server0 = await readServer(store);
  const host = options.host ?? "127.0.0.1";
  const port = options.port ?? server0.ports.panel;

  // The server spec as last read: whether the box is activated, and its names.
  let current = server0;
  let own: OwnHosts = ownHosts(host, port, server0.hostname, server0.ports.https);
  let serverStamp = "";
  const refreshServer = async (): Promise<void> => {
    const s = await stat(store.path(specPath("server"))).catch(() => undefined);
    const stamp = s === undefined ? "none" : `${s.ino}:${s.size}:${s.mtimeMs}`;
    if (stamp !== serverStamp) {
      serverStamp = stamp;
      // An unreadable spec keeps the last good one.
      current = (await readServer(store).catch(() => undefined)) ?? current;
      own = ownHosts(host, boundPort, current.hostname, current.ports.https);
    }
  };
  let boundPort = port;

  // The app is made once the port is known: Next fetches a server action's redirect target from
  // itself, at the port it was given (port 0 would send it to 3000).
  const next: { handle?: (req: IncomingMessage, res: ServerResponse) => Promise<void> } = {};
  let setReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (setReady = resolve));

  const mailDomains = new MailDomains(store);
  const session = sessionCookieName(secure);
  const csrf = csrfCookieName(secure);
  const server: Server = createServer((req, res) => {
    void (async () => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
      await refreshServer();
      // Only the box's own names: a foreign Host is a rebinding page or a misrouted request.
      const hostHeader = (req.headers.host ?? "").toLowerCase();
      const ownOrigins = originsFor(hostHeader, own);
      // Mail apps' autoconfig and senders' MTA-STS policy are asked of each mail domain's own
      // names (snitch-proxy routes their exact paths here).
      const lookup = mailLookupOf(hostHeader, req.url ?? "/");
      if (lookup !== undefined) {
        await answerMailLookup(req.method ?? "GET", lookup, res, mailDomains, current);
        return;
      }
      if (ownOrigins === undefined) {
        refuse(res, 421, `this panel does not answer to the name ${JSON.stringify(hostHeader.slice(0, 300))}`);
        return;
      }
      const target = req.url ?? "/";
      const normal = normalisePath(target);
      if (!normal.ok) {
        refuse(res, 400, `bad request: ${normal.reason}`);
        return;
      }
      // Next.js gets the path the gate decided on, so the two cannot read it differently.
      const query = target.indexOf("?");
      req.url = `${encodePath(normal.path)}${query === -1 ? "" : target.slice(query)}`;
      const path = normal.path;
      const method = req.method ?? "GET";
      // The public name is served over HTTPS only (through snitch-proxy): browsers are told to
      // keep to it. A header sent over plain HTTP would be ignored, so only HTTPS answers carry it.
      if (own.public.includes(hostHeader) && proxiedOverHttps(req, forwarding)) res.setHeader("strict-transport-security", HSTS);
      const client = clientAddress(req, forwarding);
      req.headers["x-coyote-client-ip"] = client;
      // Compiled assets are everyone's: no session lookup nor server spec check for them.
      if (isAsset(path) && next.handle !== undefined) {
        await next.handle(req, res);
        return;
      }
      // A password check would find no free slot: say so now rather than after the app's work.
      if (method === "POST" && VERIFYING_PATHS.has(path) && verificationsBusy()) {
        logger.info({ path, client }, `panel: 429 for POST ${path}, every password check slot is taken`);
        refuse(res, 429, "too many sign-ins are being checked right now; try again in a moment", { "retry-after": "1" });
        return;
      }
      const cookies = parseCookies(req.headers.cookie);
      const user = findSession(db, cookies.get(session));
      const decision = decide({ method, path, activated: current.activated, role: user?.role, origin: originOf(req), ownOrigins });
      if (decision.kind === "deny") {
        logger.info({ path, method, status: decision.status, user: user?.email }, `panel: ${decision.status} for ${method} ${path}`);
        deny(req, res, decision.status, decision.reason, path);
        return;
      }
      if (decision.kind === "redirect") {
        res.writeHead(303, { location: decision.location, "cache-control": "no-store" }).end();
        return;
      }
      // Every visitor gets a CSRF cookie; the same request's forms echo it (double submit).
      if (!cookies.has(csrf)) {
        const token = newToken();
        res.appendHeader("set-cookie", cookieHeader(csrf, token, { secure }));
        req.headers.cookie = `${req.headers.cookie ? `${req.headers.cookie}; ` : ""}${csrf}=${token}`;
      }
      await ready;
      if (next.handle === undefined) throw new Error("the app did not start");
      await next.handle(req, res);
    })().catch((error: unknown) => {
      logger.event("ERROR", { err: error, path: req.url }, `panel: answering ${req.method ?? "GET"} ${req.url ?? "/"} failed`);
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" }).end("internal error");
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  boundPort = bound;
  own = ownHosts(host, bound, current.hostname, current.ports.https);
  const { default: createNextApp } = await import("next");
  const app = createNextApp({ dev: false, dir: APP_DIR, hostname: host, port: bound, quiet: true, customServer: true });
  try {
    await app.prepare();
  } catch (error) {
    server.close();
    throw error;
  }
  next.handle = app.getRequestHandler();
  setReady();

  const sample = () =>
    sampleStats(db, store).catch((error: unknown) => logger.warn({ err: error }, "sampling the stats for the panel's charts failed"));
  void sample();
  const sampler = setInterval(() => void sample(), options.sampleIntervalMs ?? 5000);
  sampler.unref();

  const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound}/`;
  logger.info({ url }, `coyote-crm serves the panel at ${url}`);
  return {
    url,
    port: bound,
    async close() {
      clearInterval(sampler);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await app.close();
      closeCrmDb();
    },
  };
}
