// Who is asking, and at which name: the panel listens on loopback, where snitch-proxy, hosted
// apps and anything else on the box can reach it. Only the box's own names are served (a foreign
// Host is a DNS-rebinding page or a mistake), and only snitch-proxy, proven by a secret it read
// from the state folder, may say which client it forwards.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { FORWARDED_BY_HEADER, PANEL_FORWARDING_SECRET, type StateStore } from "@coyote/spec";

/** The secret (in `secrets/`) snitch-proxy sends in {@link FORWARDED_BY_HEADER} on what it forwards to the panel. */
export const FORWARDING_SECRET = PANEL_FORWARDING_SECRET;
export { FORWARDED_BY_HEADER };

/**
 * The forwarding secret, made (32 random bytes, base64url, mode 0600) when the state folder has
 * none or an unusable one.
 */
export async function forwardingSecret(store: StateStore): Promise<string> {
  const stored = (await store.readSecret(FORWARDING_SECRET))?.toString("utf8").trim();
  if (stored !== undefined && /^[A-Za-z0-9_-]{43}$/.test(stored)) return stored;
  const fresh = randomBytes(32).toString("base64url");
  await store.writeSecret(FORWARDING_SECRET, fresh);
  return fresh;
}

/** The names the panel answers to, each as a lower-case `Host` header value. */
export interface OwnHosts {
  /** `host:port` names of the loopback listener (IP literals, `localhost`). */
  readonly loopback: readonly string[];
  /** The box's public names (its hostname, with and without the HTTPS port). */
  readonly public: readonly string[];
}

/**
 * The Host header values this panel serves: its listener on loopback by address and as
 * `localhost`, and the server spec's hostname (reached through snitch-proxy).
 */
export function ownHosts(listenHost: string, port: number, hostname: string, httpsPort: number): OwnHosts {
  const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);
  const names = new Set(["127.0.0.1", "localhost", "::1"]);
  if (listenHost !== "0.0.0.0" && listenHost !== "::") names.add(listenHost.toLowerCase());
  const box = hostname.toLowerCase();
  return {
    loopback: [...names].map((h) => `${bracket(h)}:${port}`),
    public: [box, `${box}:443`, `${box}:${httpsPort}`],
  };
}

/**
 * The origins of a request that came with `host` (already lower-case), or undefined when the
 * panel does not serve that name.
 */
export function originsFor(host: string, own: OwnHosts): string[] | undefined {
  if (own.loopback.includes(host)) return [`http://${host}`, `https://${host}`];
  if (own.public.includes(host)) return [`https://${host}`, `https://${host.replace(/:443$/, "")}`];
  return undefined;
}

/** What the panel sends as `Strict-Transport-Security` on its public name: a year, as browsers' preload lists ask. */
export const HSTS = "max-age=31536000";

/**
 * Whether a request came through snitch-proxy over HTTPS: it carries the forwarding secret and
 * `X-Forwarded-Proto: https`. Read before {@link clientAddress}, which removes both.
 */
export function proxiedOverHttps(req: IncomingMessage, secret: string): boolean {
  const given = req.headers[FORWARDED_BY_HEADER];
  return typeof given === "string" && sameSecret(given, secret) && req.headers["x-forwarded-proto"] === "https";
}

/**
 * The client's address: the last `X-Forwarded-For` hop when the request carries the forwarding
 * secret (snitch-proxy appends the address it saw last), else the socket's peer. Either way the
 * secret and `X-Forwarded-For` are removed, and without the secret every other forwarding header
 * too, so nothing behind the gate sees the secret or trusts a forwarded value it did not vouch for.
 */
export function clientAddress(req: IncomingMessage, secret: string): string {
  const remote = req.socket.remoteAddress ?? "unknown";
  const given = req.headers[FORWARDED_BY_HEADER];
  const forwarded = req.headers["x-forwarded-for"];
  Reflect.deleteProperty(req.headers, FORWARDED_BY_HEADER);
  delete req.headers["x-forwarded-for"];
  if (typeof given !== "string" || !sameSecret(given, secret)) {
    // Next.js reads these for its own origin checks: only the proxy may set them.
    delete req.headers["x-forwarded-host"];
    delete req.headers["x-forwarded-proto"];
    delete req.headers["x-forwarded-port"];
    delete req.headers.forwarded;
    delete req.headers["x-real-ip"];
    return remote;
  }
  const last = typeof forwarded === "string" ? forwarded.split(",").at(-1)?.trim() : undefined;
  return last === undefined || last === "" ? remote : last;
}

function sameSecret(given: string, secret: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}
