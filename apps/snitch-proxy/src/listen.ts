// Binding and closing snitch-proxy's listeners.
import type { Server as NetServer } from "node:net";
import type { Listen } from "./options.ts";

/** Binds `server` to `at`, with SO_REUSEPORT when several worker processes share the port. */
export function listen(server: NetServer, at: Listen, reusePort: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: at.port, host: at.host, reusePort }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Stops accepting; resolves once every connection of `server` is closed. */
export function closeServer(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
