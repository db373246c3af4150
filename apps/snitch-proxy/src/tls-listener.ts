// snitch-proxy's TLS listener: the certificate chosen by SNI, both protocols offered by ALPN, and
// each connection counted and admitted (per client address) before its handshake.
import type { Socket } from "node:net";
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { CoyoteLogger } from "@coyote/log";
import type { AddressLimit } from "./address-limit.ts";
import { TLS_CIPHERS, type CertificateStore } from "./certs.ts";
import { SnitchProxyError } from "./errors.ts";
import type { TrafficStats } from "./stats.ts";

/** What the TLS listener needs. */
export interface TlsListenerOptions {
  readonly certs: CertificateStore;
  readonly logger: CoyoteLogger;
  readonly stats: TrafficStats;
  readonly perAddress: AddressLimit;
  readonly handshakeTimeoutMs: number;
  /** The open connections, kept up to date here (destroyed when the stop's grace runs out). */
  readonly sockets: Set<Socket>;
}

/** Makes the TLS server (not bound yet); its `secureConnection`s are the caller's to serve. */
export function createTlsListener(options: TlsListenerOptions): TlsServer {
  const { certs, logger, stats, perAddress, sockets } = options;
  const tls = createTlsServer({
    ALPNProtocols: ["h2", "http/1.1"],
    minVersion: "TLSv1.2",
    ciphers: TLS_CIPHERS,
    honorCipherOrder: true,
    // Each answer goes out in one write (head and body together): no reason to wait for more.
    noDelay: true,
    SNICallback: (serverName, callback) => {
      certs
        .find(serverName)
        .then(
          (found) => {
            if (found) callback(null, found.context);
            else callback(new SnitchProxyError("SNITCH_ERR_NO_CERTIFICATE", `no certificate for ${serverName}`));
          },
          (error: unknown) => {
            logger.event("ERROR", { err: error, serverName }, "loading a certificate");
            callback(error as Error);
          },
        )
        // A throw from the callback (a socket gone meanwhile) must not become an unhandled rejection.
        .catch((error: unknown) => logger.event("ERROR", { err: error, serverName }, "answering a handshake"));
    },
    handshakeTimeout: options.handshakeTimeoutMs,
  });
  tls.on("connection", (socket: Socket) => {
    if (!perAddress.admit(socket)) {
      stats.counters.connectionsRefused++;
      socket.destroy();
      return;
    }
    stats.counters.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  tls.on("drop", () => stats.counters.connectionsRefused++);
  // A failed or timed-out handshake: tls.Server leaves the socket open unless told otherwise.
  tls.on("tlsClientError", (error: Error & { code?: string }, socket: TLSSocket) => {
    stats.counters.tlsErrors++;
    logger.debug({ err: error }, "tls handshake failed");
    socket.destroy();
  });
  return tls;
}
