// The one event vocabulary of Coyote: every component logs its
// high-level events under these names, so that `coyote logs --timeline` can tell one story
// across components without a per-component dictionary.

/**
 * Every event name a Coyote component may log, in one readonly tuple.
 *
 * The first group is a service's life and one request's path through the
 * components; the second from the minion's reconcile loop and the spec history; the third from
 * the daemons' own life; the last names the moments of failover, certificates and the activator
 * that an operator most often needs to find in a story. Add a name here (with its description)
 * rather than inventing a free-form one in a component.
 */
export const EVENTS = [
  "SERVICE_UP",
  "SERVICE_DOWN",
  "REQUEST_RECEIVED",
  "REQUEST_SENT",
  "RESPONSE_SENT",
  "RESPONSE_RECEIVED",
  "RESULT_PRODUCED",
  "RECONCILE_STARTED",
  "RECONCILE_DONE",
  "RECONCILE_FAILED",
  "SPEC_APPLIED",
  "SPEC_ROLLED_BACK",
  "ALARM_RAISED",
  "ALARM_CLEARED",
  "CONFIG_RELOADED",
  "COMPONENT_STARTED",
  "COMPONENT_EXITED",
  "PEER_UP",
  "PEER_DOWN",
  "AUTHORITY_TAKEN",
  "SELF_FENCED",
  "CERT_ISSUED",
  "BACKEND_WOKEN",
  "BACKEND_STOPPED",
  "STATE_DUMPED",
  "ERROR",
] as const;

/** One name of the event vocabulary, such as `"RECONCILE_DONE"`. */
export type EventName = (typeof EVENTS)[number];

/**
 * A one-line description of every event, because the vocabulary is documentation too: the
 * timeline and the docs show these, and a component author reads them to pick the right name.
 */
export const EVENT_DESCRIPTIONS: Readonly<Record<EventName, string>> = {
  SERVICE_UP: "A hosted service became reachable and serves requests.",
  SERVICE_DOWN: "A hosted service stopped being reachable: stopped, crashed, or failing its checks.",
  REQUEST_RECEIVED: "A component received a request (HTTP, local socket or buddy) and began handling it.",
  REQUEST_SENT: "A component sent a request to another component, a hosted service or an outside API.",
  RESPONSE_SENT: "A component sent its response to a request it had received.",
  RESPONSE_RECEIVED: "A component received the response to a request it had sent.",
  RESULT_PRODUCED: "A component produced the result of a unit of work, before responding with it.",
  RECONCILE_STARTED: "The minion began reconciling one spec against the observed world.",
  RECONCILE_DONE: "A reconcile finished: converged, or requeued to check again later.",
  RECONCILE_FAILED: "A reconcile could not converge: a terminal error, or one retried with backoff.",
  SPEC_APPLIED: "A new version of a spec was written and committed to the specs repository.",
  SPEC_ROLLED_BACK: "A spec was returned to an earlier version from its history.",
  ALARM_RAISED: "An alarm was raised for a human: a condition the system cannot fix by itself.",
  ALARM_CLEARED: "A raised alarm was cleared, by recovery or by a human.",
  CONFIG_RELOADED: "A component reloaded its configuration (routes, units, limits, plugins) without restarting.",
  COMPONENT_STARTED: "A Coyote component started and is ready to work.",
  COMPONENT_EXITED: "A Coyote component is exiting, or its supervisor saw it exit.",
  PEER_UP: "A buddy server answered its heartbeats again, or for the first time.",
  PEER_DOWN: "A buddy server missed enough heartbeats to be considered down.",
  AUTHORITY_TAKEN: "This server took authority over a service through failover.",
  SELF_FENCED: "This server stopped its failover-protected services because it could reach no one.",
  CERT_ISSUED: "A TLS certificate was issued or renewed.",
  BACKEND_WOKEN: "The activator started a sleeping backend for a waiting request.",
  BACKEND_STOPPED: "The activator stopped a backend: idle, evicted for memory, or told to.",
  STATE_DUMPED: "A service dumped its state, for a backup or before being stopped.",
  ERROR: "An error a component handled and for which no more specific event exists.",
};

const eventSet: ReadonlySet<string> = new Set<string>(EVENTS);

/**
 * Tells whether a string is a name of the event vocabulary, so that values from outside the type
 * system (a log file, a CLI flag) can be narrowed to {@link EventName}.
 */
export function isEventName(name: unknown): name is EventName {
  return typeof name === "string" && eventSet.has(name);
}

/**
 * Throws a clear error when `name` is not in the vocabulary. The type system already rejects an
 * unknown literal; this catches names built at run time or passed from JavaScript.
 */
export function assertEventName(name: unknown): asserts name is EventName {
  if (!isEventName(name)) {
    throw new Error(`unknown event "${String(name)}": use one of ${EVENTS.join(", ")}`);
  }
}
