import { createSecureContext, type SecureContext } from "node:tls";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { certificateFileName } from "@coyote/spec";
import { SnitchProxyError } from "./errors.ts";

/**
 * The TLS 1.2 suites offered: forward-secret AEAD only (no CBC, so no padding oracle such as
 * LUCKY13), the browsers' preferred ones first; TLS 1.3 suites are all AEAD. The listener's list
 * is the one in force: a context chosen by SNI brings its certificate, not its suites.
 */
export const TLS_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/** The file in `proxy/certs/` that holds a name's key and chain (see `certificateFileName`). */
export function certificateFile(certsDir: string, name: string): string {
  return join(certsDir, certificateFileName(name));
}

interface Entry {
  readonly context: SecureContext;
  /** The name the certificate was found under: the host itself or `*.parent`. */
  readonly name: string;
  readonly mtimeMs: number;
  checkedAt: number;
}

/** What the store found for a server name. */
export interface Found {
  readonly context: SecureContext;
  /** The name the certificate is stored under: the host itself, or a wildcard covering it. */
  readonly name: string;
}

/**
 * The certificates snitch-proxy serves, looked up by SNI server name. A name is served only its
 * own certificate or a wildcard that covers it; a name with neither gets no context at all (a
 * TLS error for the client), never another customer's certificate. Contexts are cached and a
 * cached one is re-checked against its file at most every `recheckMs`, so a renewed
 * certificate is served within that time without any signal from the writer.
 */
export class CertificateStore {
  readonly #dir: string;
  readonly #recheckMs: number;
  readonly #cache = new Map<string, Entry>();
  readonly #maxEntries: number;
  /** Names with no certificate, until when they are known to have none (a flood of the same unknown name is not a flood of disk reads). */
  readonly #misses = new Map<string, number>();
  readonly #missMs: number;
  readonly #maxMisses: number;

  /**
   * Makes the store.
   * @param certsDir `proxy/certs` of the state folder.
   * @param options `recheckMs` (default 2000) and `maxEntries` of the context cache (default
   *   50000); how long a name without a certificate is remembered as such, `missMs` (default
   *   5000), and how many such names at most, `maxMisses` (default 10000).
   */
  constructor(certsDir: string, options: { recheckMs?: number; maxEntries?: number; missMs?: number; maxMisses?: number } = {}) {
    this.#dir = certsDir;
    this.#recheckMs = options.recheckMs ?? 2000;
    this.#maxEntries = options.maxEntries ?? 50000;
    this.#missMs = options.missMs ?? 5000;
    this.#maxMisses = options.maxMisses ?? 10_000;
  }

  /**
   * Finds the certificate for a server name: the exact name first, then the wildcard one label
   * up. Resolves undefined when there is none.
   * @throws an Error when the file exists but holds no usable key and certificate.
   */
  async find(serverName: string): Promise<Found | undefined> {
    const host = normalize(serverName);
    if (host === undefined) return undefined;
    const missUntil = this.#misses.get(host);
    if (missUntil !== undefined) {
      if (performance.now() < missUntil) return undefined;
      this.#misses.delete(host);
    }
    const found = await this.#find(host);
    if (found === undefined) this.#missed(host);
    return found;
  }

  async #find(host: string): Promise<Found | undefined> {
    const exact = await this.#lookup(host);
    if (exact) return exact;
    const dot = host.indexOf(".");
    if (dot <= 0 || host.indexOf(".", dot + 1) < 0) return undefined;
    return this.#lookup(`*${host.slice(dot)}`);
  }

  #missed(host: string): void {
    if (this.#missMs <= 0) return;
    if (this.#misses.size >= this.#maxMisses) {
      // Oldest first (insertion order); a full table of fresh misses loses its oldest one.
      const oldest = this.#misses.keys().next();
      if (!oldest.done) this.#misses.delete(oldest.value);
    }
    this.#misses.set(host, performance.now() + this.#missMs);
  }

  /** Forgets which names had no certificate (routes or certificates changed). */
  forgetMisses(): void {
    this.#misses.clear();
  }

  /**
   * The name whose certificate a handshake for `serverName` was served, from the cache: the name
   * itself or the wildcard covering it; undefined when none is cached.
   */
  servedName(serverName: string): string | undefined {
    const host = normalize(serverName);
    if (host === undefined) return undefined;
    if (this.#cache.has(host)) return host;
    const dot = host.indexOf(".");
    const wildcard = dot > 0 ? `*${host.slice(dot)}` : undefined;
    return wildcard !== undefined && this.#cache.has(wildcard) ? wildcard : undefined;
  }

  /** Forgets every cached context (the next handshake of each name reads its file). */
  clear(): void {
    this.#cache.clear();
    this.#misses.clear();
  }

  async #lookup(name: string): Promise<Found | undefined> {
    const now = Date.now();
    const cached = this.#cache.get(name);
    if (cached && now - cached.checkedAt < this.#recheckMs) return cached;
    const file = certificateFile(this.#dir, name);
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(file)).mtimeMs;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        this.#cache.delete(name);
        return undefined;
      }
      throw error;
    }
    if (cached && cached.mtimeMs === mtimeMs) {
      cached.checkedAt = now;
      return cached;
    }
    const pem = await readFile(file, "utf8");
    let context: SecureContext;
    try {
      // The key and the chain are in one file; Node picks each out of the PEM by its label.
      context = createSecureContext({ key: pem, cert: pem, minVersion: "TLSv1.2" });
    } catch (error) {
      throw new SnitchProxyError("SNITCH_ERR_CERT_INVALID", `loading certificate ${file}: ${(error as Error).message}`, { cause: error });
    }
    if (this.#cache.size >= this.#maxEntries) {
      // Oldest first: a Map iterates in insertion order.
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
    const entry: Entry = { context, name, mtimeMs, checkedAt: now };
    this.#cache.delete(name);
    this.#cache.set(name, entry);
    return entry;
  }
}

/**
 * Lower-cases a server name and drops a trailing dot; undefined for anything that is not a
 * plausible DNS name (so a crafted SNI never becomes a path).
 */
export function normalize(serverName: string): string | undefined {
  let host = serverName.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.length === 0 || host.length > 253) return undefined;
  if (!/^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(host)) return undefined;
  return host;
}
