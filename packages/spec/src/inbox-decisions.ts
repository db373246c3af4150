import { z } from "zod";
import { SchemaVersion, Timestamp } from "./primitives.ts";
import type { InboxRequest } from "./runtime.ts";

/**
 * The folder of the crm's decisions on coyote requests: `inbox-decisions/<file>` answers
 * `inbox/<file>`. One writer per file: coyote-listener writes the request, the crm the decision;
 * neither rewrites the other's.
 */
export const INBOX_DECISIONS_DIR = "inbox-decisions";

/** `inbox-decisions/<file>`: what a human decided on the coyote request `inbox/<file>`, when, who. */
export const InboxDecision = z.strictObject({
  schemaVersion: SchemaVersion,
  /** The id of the request decided (the `id` of `inbox/<file>`). */
  id: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  state: z.enum(["accepted", "refused"]),
  decidedAt: Timestamp,
  decidedBy: z.string().min(1).max(200),
});
/** A human's decision on a coyote request. */
export type InboxDecision = z.infer<typeof InboxDecision>;

/**
 * The request as decided: the decision's state, time and person on top of the request.
 * @throws Error when the decision answers another request.
 */
export function withDecision(request: InboxRequest, decision: InboxDecision | undefined): InboxRequest {
  if (decision === undefined) return request;
  if (decision.id !== request.id) throw new Error(`the decision answers request ${decision.id}, not ${request.id}`);
  return { ...request, state: decision.state, decidedAt: decision.decidedAt, decidedBy: decision.decidedBy };
}

/** The decision a decided request view records (for the crm to write). */
export function decisionOf(request: InboxRequest): InboxDecision {
  if (request.state === "pending" || request.decidedAt === undefined) throw new Error(`request ${request.id} is not decided`);
  return { schemaVersion: 1, id: request.id, state: request.state, decidedAt: request.decidedAt, decidedBy: request.decidedBy ?? "unknown" };
}
