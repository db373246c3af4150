// snitch-proxy's listening sockets: the TLS listener and the plain HTTP one, bound where the options
// say and moved when told (the minion changed the ports). A move binds the new listeners first and
// only then stops the old ones accepting: connections already open finish on them, and a port that
// cannot be bound leaves the proxy where it was.
import type { Server as HttpServer } from "node:http";
import type { AddressInfo, Server as NetServer } from "node:net";
import type { Server as TlsServer } from "node:tls";
import type { Listen } from "./options.ts";

/** How the listeners are made. */
export interface ListenerFactory {
  /** A TLS server, wired to serve what it accepts, not bound yet. */
  tls(): TlsServer;
  /** A plain HTTP server, not bound yet. */
  plain(): HttpServer;
}

/** This process's connection limits, per listener. */
export interface ConnectionLimits {
  readonly tls: number;
  readonly plain: number;
}

const sameListen = (a: Listen | undefined, b: Listen | undefined) => a?.host === b?.host && a?.port === b?.port;

/** The proxy's listeners, and those it stopped accepting on whose connections are still open. */
export class Listeners {
  readonly #factory: ListenerFactory;
  #tls: TlsServer;
  #plain: HttpServer | undefined;
  #https: Listen;
  #http: Listen | undefined;
  #limits: ConnectionLimits;
  readonly #closing: Promise<void>[] = [];
  readonly #retiredPlain: HttpServer[] = [];

  private constructor(factory: ListenerFactory, tls: TlsServer, https: Listen, plain: HttpServer | undefined, http: Listen | undefined, limits: ConnectionLimits) {
    this.#factory = factory;
    this.#tls = tls;
    this.#https = https;
    this.#plain = plain;
    this.#http = http;
    this.#limits = limits;
  }

  /** Binds the TLS listener and, when `http` is given, the plain one. */
  static async open(factory: ListenerFactory, https: Listen, http: Listen | undefined, limits: ConnectionLimits): Promise<Listeners> {
    const { tls, plain } = await Listeners.#bind(factory, https, http, limits);
    // Bound just above: #bind makes a TLS listener whenever it is given an address.
    if (!tls) throw new Error("binding the TLS listener: none was made");
    return new Listeners(factory, tls, https, plain, http, { ...limits });
  }

  /** Makes and binds what is asked, closing what was bound when a later bind fails. */
  static async #bind(factory: ListenerFactory, https: Listen | undefined, http: Listen | undefined, limits: ConnectionLimits): Promise<{ tls: TlsServer | undefined; plain: HttpServer | undefined }> {
    let tls: TlsServer | undefined;
    let plain: HttpServer | undefined;
    try {
      if (https) {
        tls = factory.tls();
        tls.maxConnections = limits.tls;
        await listen(tls, https);
      }
      if (http) {
        plain = factory.plain();
        plain.maxConnections = limits.plain;
        await listen(plain, http);
      }
    } catch (error) {
      if (tls?.listening === true) tls.close();
      if (plain?.listening === true) plain.close();
      throw error;
    }
    return { tls, plain };
  }

  /** The bound TLS address. */
  get httpsAddress(): AddressInfo {
    return this.#tls.address() as AddressInfo;
  }

  /** The bound plain HTTP address, when there is one. */
  get httpAddress(): AddressInfo | undefined {
    return this.#plain?.address() as AddressInfo | undefined;
  }

  /** This process's connection limit, on each listener. */
  set maxConnections(limit: number) {
    this.#limits = { tls: limit, plain: limit };
    this.#tls.maxConnections = limit;
    if (this.#plain) this.#plain.maxConnections = limit;
  }

  /** The TLS listener's limit only (the routes' limits apply to it). */
  set tlsMaxConnections(limit: number) {
    this.#limits = { ...this.#limits, tls: limit };
    this.#tls.maxConnections = limit;
  }

  /**
   * Moves the listeners: a listener whose address changes is bound anew (with its own server, so
   * the old one keeps its open connections) and the old one stops accepting.
   * @throws when a new address cannot be bound; the listeners are then as they were.
   */
  async move(https: Listen, http: Listen | undefined): Promise<void> {
    const tlsMoves = !sameListen(https, this.#https);
    const plainMoves = !sameListen(http, this.#http);
    const bound = await Listeners.#bind(this.#factory, tlsMoves ? https : undefined, plainMoves ? http : undefined, this.#limits);
    if (bound.tls) {
      const old = this.#tls;
      this.#tls = bound.tls;
      this.#https = https;
      this.#closing.push(closeServer(old));
    }
    if (plainMoves) {
      const old = this.#plain;
      this.#plain = bound.plain;
      this.#http = http;
      if (old) {
        this.#closing.push(closeServer(old));
        old.closeIdleConnections();
        this.#retiredPlain.push(old);
      }
    }
  }

  /**
   * Stops accepting; resolves once every connection, on the old listeners too, is closed.
   * Idle plain HTTP connections are closed at once.
   */
  close(): Promise<void> {
    const closing = Promise.all([closeServer(this.#tls), this.#plain ? closeServer(this.#plain) : Promise.resolve(), ...this.#closing]);
    for (const plain of this.#plainServers()) plain.closeIdleConnections();
    return closing.then(() => undefined);
  }

  /** Cuts every plain HTTP connection off (the stop's grace ran out); TLS sockets are the caller's. */
  closeAllPlain(): void {
    for (const plain of this.#plainServers()) plain.closeAllConnections();
  }

  #plainServers(): HttpServer[] {
    return this.#plain ? [this.#plain, ...this.#retiredPlain] : [...this.#retiredPlain];
  }
}

/**
 * Binds `server` to `at`. In a cluster's worker node:cluster has the parent bind it and hand the
 * worker its connections; a connection over the worker's limit is then closed by the worker, as
 * it is without a cluster (by default the worker gives it back to the parent, which hands it to
 * the next worker, and round and round while every worker is full).
 */
function listen(server: NetServer & { dropMaxConnection?: boolean }, at: Listen): Promise<void> {
  server.dropMaxConnection = true;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: at.port, host: at.host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Stops accepting; resolves once every connection of `server` is closed. */
function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
