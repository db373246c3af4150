import type { ActivatorClient } from "@coyote/spec";
import type { CoyoteLogger } from "@coyote/log";
import type { Upstream } from "./routes.ts";

/** Where one request goes: a host and port to connect to. */
export interface Target {
  readonly host: string;
  readonly port: number;
  /** The activator unit behind the address, when the route names one. */
  readonly unit?: string;
}

/** Splits `host:port` or `[v6]:port`. */
export function parseHostPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  const host = address.slice(0, colon);
  return { host: host.startsWith("[") ? host.slice(1, -1) : host, port: Number(address.slice(colon + 1)) };
}

/**
 * Turns a route's upstream into an address, waking a sleeping activator unit first. The address a
 * wake returns is remembered, so only the first request after a sleep waits; concurrent first
 * requests share one wake. When a remembered address refuses a connection (the unit was stopped
 * for idleness or memory), the caller forgets it and asks again, which wakes the unit again.
 */
export class Upstreams {
  readonly #activator: ActivatorClient;
  readonly #logger: CoyoteLogger;
  readonly #wakeTimeoutMs: number;
  readonly #addresses = new Map<string, Target>();
  readonly #waking = new Map<string, Promise<Target>>();
  readonly #parsed = new Map<string, Target>();
  /** Counts wakes asked for, for the stats. */
  wakes = 0;

  /**
   * Makes the resolver.
   * @param activator the activator's client.
   * @param logger where wakes are logged.
   * @param wakeTimeoutMs how long a request may wait for its unit.
   */
  constructor(activator: ActivatorClient, logger: CoyoteLogger, wakeTimeoutMs: number) {
    this.#activator = activator;
    this.#logger = logger;
    this.#wakeTimeoutMs = wakeTimeoutMs;
  }

  /**
   * The address for an `address` or `unit` upstream; synchronous when it is known (the common
   * case), a promise when a unit must be woken first.
   * @throws ActivatorError (through the promise) when the unit cannot be woken.
   */
  resolve(upstream: Exclude<Upstream, { kind: "static" }>, requestId: string): Target | Promise<Target> {
    if (upstream.kind === "address") {
      let target = this.#parsed.get(upstream.address);
      if (!target) {
        target = parseHostPort(upstream.address);
        this.#parsed.set(upstream.address, target);
      }
      return target;
    }
    const known = this.#addresses.get(upstream.unit);
    if (known) return known;
    let waking = this.#waking.get(upstream.unit);
    if (!waking) {
      waking = this.#wake(upstream.unit, requestId);
      this.#waking.set(upstream.unit, waking);
    }
    return waking;
  }

  /** Forgets the remembered address of a unit, after it refused a connection. */
  forget(unit: string): void {
    this.#addresses.delete(unit);
  }

  async #wake(unit: string, requestId: string): Promise<Target> {
    this.wakes++;
    try {
      const answer = await this.#activator.wake(unit, { timeoutMs: this.#wakeTimeoutMs, requestId });
      const target = { ...parseHostPort(answer.address), unit };
      this.#addresses.set(unit, target);
      this.#logger.event("RESPONSE_RECEIVED", { from: "docker-activator", unit, address: answer.address, started: answer.started, waitedMs: answer.waitedMs, requestId });
      return target;
    } finally {
      this.#waking.delete(unit);
    }
  }
}
