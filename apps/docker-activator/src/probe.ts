import { request } from "node:http";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { Unit } from "./runtime.ts";

/** How one probe attempt went. */
export interface ProbeResult {
  /** Whether the unit is ready. */
  readonly ok: boolean;
  /** Why not, for the timeout message. */
  readonly detail: string;
}

const ATTEMPT_MS = 1000;

function probeTcp(host: string, port: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (result: ProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(ATTEMPT_MS, () => done({ ok: false, detail: `tcp connect to ${host}:${port} timed out` }));
    socket.once("connect", () => done({ ok: true, detail: "connected" }));
    socket.once("error", (error: NodeJS.ErrnoException) => done({ ok: false, detail: `tcp connect to ${host}:${port}: ${error.code ?? error.message}` }));
  });
}

function probeHttp(host: string, port: number, path: string, expectStatus: number | undefined): Promise<ProbeResult> {
  return new Promise((resolve) => {
    // No agent: a probe must open a fresh connection, as a client would after the wake.
    const req = request({ host, port, path, method: "GET", agent: false, timeout: ATTEMPT_MS, headers: { "user-agent": "coyote-docker-activator-probe" } }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = expectStatus === undefined ? status >= 200 && status < 400 : status === expectStatus;
      resolve({ ok, detail: `GET http://${host}:${port}${path} answered ${status}${expectStatus === undefined ? "" : `, expected ${expectStatus}`}` });
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (error: NodeJS.ErrnoException) => resolve({ ok: false, detail: `GET http://${host}:${port}${path}: ${error.code ?? error.message}` }));
    req.end();
  });
}

/** Runs a unit's readiness probe once, from the activator itself. */
export function probeOnce(unit: Unit): Promise<ProbeResult> {
  const readiness = unit.readiness;
  return readiness.kind === "tcp" ? probeTcp(unit.host, unit.port) : probeHttp(unit.host, unit.port, readiness.path, readiness.expectStatus);
}

/** How {@link waitReady} ended. */
export type ReadyOutcome = { readonly kind: "ready" } | { readonly kind: "timeout"; readonly detail: string } | { readonly kind: "exited"; readonly detail: string };

/**
 * Polls a unit's readiness probe until it passes, the deadline passes, or the unit is found dead.
 * For the first two seconds it probes every 10 ms at most (a fresh container is usually ready
 * within a few hundred, and every millisecond between ready and answered is added to a waiting
 * request); after that every 100 ms, so that a slow unit is not hammered.
 * @param unit the unit.
 * @param deadline `performance.now()` value after which it gives up.
 * @param alive asked every few attempts, so that a unit that exited fails at once rather than at the deadline.
 * @param signal gives up early (the activator is stopping), as a timeout saying so.
 */
export async function waitReady(unit: Unit, deadline: number, alive: () => Promise<{ running: boolean; exit?: string }>, signal?: AbortSignal): Promise<ReadyOutcome> {
  const started = performance.now();
  let delay = 2;
  let last: string;
  for (let attempt = 0; ; attempt++) {
    const result = await probeOnce(unit);
    if (result.ok) return { kind: "ready" };
    last = result.detail;
    if (attempt % 5 === 4) {
      const status = await alive().catch(() => ({ running: true }));
      if (!status.running) return { kind: "exited", detail: (status as { exit?: string }).exit ?? "it is not running" };
    }
    const left = deadline - performance.now();
    if (left <= 0) return { kind: "timeout", detail: last };
    if (signal?.aborted === true) return { kind: "timeout", detail: `${last}; the activator is stopping` };
    await sleep(Math.min(delay, left));
    delay = Math.min(delay * 2, performance.now() - started < 2000 ? 10 : 100);
  }
}
