// A buddy's heartbeat as the panel shows it. coyote-listener receives the heartbeats and reports
// the last one per buddy in its stats counters; the panel only reads that file.
import { heartbeatCounter, type ComponentStats } from "@coyote/spec";

/** The server spec's heartbeat settings. */
export interface HeartbeatSettings {
  readonly intervalSeconds: number;
  readonly missedBeforeDown: number;
}

/** Where a buddy's heartbeat stands. */
export type HeartbeatState =
  /** coyote-listener wrote no stats: nothing is known. */
  | { readonly kind: "no-data" }
  /** The listener runs but never heard from this buddy. */
  | { readonly kind: "never" }
  | { readonly kind: "up"; readonly lastAt: number; readonly agoSeconds: number }
  /** Silent for longer than interval × missedBeforeDown. */
  | { readonly kind: "down"; readonly lastAt: number; readonly agoSeconds: number };

/** A buddy's heartbeat state from the listener's stats (undefined: the listener wrote none). */
export function heartbeatState(fingerprint: string, listener: ComponentStats | undefined, settings: HeartbeatSettings, now: number): HeartbeatState {
  if (listener === undefined) return { kind: "no-data" };
  const lastAt = listener.counters?.[heartbeatCounter(fingerprint)];
  if (lastAt === undefined || !Number.isFinite(lastAt) || lastAt <= 0) return { kind: "never" };
  // A clock a little ahead on the listener's side reads as "just now", not as a negative age.
  const agoMs = Math.max(0, now - lastAt);
  const agoSeconds = Math.floor(agoMs / 1000);
  const limitMs = settings.intervalSeconds * settings.missedBeforeDown * 1000;
  return agoMs > limitMs ? { kind: "down", lastAt, agoSeconds } : { kind: "up", lastAt, agoSeconds };
}

/** The state in words, for the buddies table; always in seconds, since that is the heartbeat's own unit. */
export function heartbeatText(state: HeartbeatState): string {
  switch (state.kind) {
    case "no-data":
      return "no heartbeat data: coyote-listener is not running";
    case "never":
      return "no heartbeat received yet";
    case "up":
      return `last heartbeat ${state.agoSeconds} s ago`;
    case "down":
      // The badge says "down"; the text says since when.
      return `last heartbeat ${state.agoSeconds} s ago`;
  }
}

/** The badge's word for a state. */
export function heartbeatLabel(state: HeartbeatState): "up" | "down" | "unknown" {
  return state.kind === "up" || state.kind === "down" ? state.kind : "unknown";
}

/** The badge class of a state: ok, bad or warn. */
export function heartbeatBadge(state: HeartbeatState): "ok" | "bad" | "warn" {
  return state.kind === "up" ? "ok" : state.kind === "down" ? "bad" : "warn";
}
