// Deciding coyote requests that coyote-listener left in `inbox/` for a human.
import { z } from "zod";
import type { InboxRequest } from "@coyote/spec";
import { CrmError } from "../errors.ts";

/** An inbox file name as a form may name it: one plain file of `inbox/`, never a path. */
export const InboxFileName = z.string().regex(/^[A-Za-z0-9_-]{1,64}\.json$/, { error: "not an inbox file name" });

/** The form of an Accept or Refuse button. */
export const DecisionInput = z.object({
  file: InboxFileName,
  decision: z.enum(["accept", "refuse"], { error: "the decision is accept or refuse" }),
});
/** The form of an Accept or Refuse button. */
export type DecisionInput = z.infer<typeof DecisionInput>;

/** One entry of `readInbox`: a request, or a file that did not validate. */
export interface InboxEntry {
  readonly file: string;
  readonly request?: InboxRequest;
  readonly error?: string;
}

/** The inbox in three lists, each in the order given (readInbox: newest first). */
export interface InboxLists {
  readonly pending: Array<{ file: string; request: InboxRequest }>;
  readonly decided: Array<{ file: string; request: InboxRequest }>;
  readonly bad: Array<{ file: string; error: string }>;
}

/** Splits the inbox into pending requests, decided ones and bad files. */
export function splitInbox(entries: readonly InboxEntry[]): InboxLists {
  const lists: InboxLists = { pending: [], decided: [], bad: [] };
  for (const entry of entries) {
    if (entry.request === undefined) lists.bad.push({ file: entry.file, error: entry.error ?? "unreadable" });
    else if (entry.request.state === "pending") lists.pending.push({ file: entry.file, request: entry.request });
    else lists.decided.push({ file: entry.file, request: entry.request });
  }
  return lists;
}

/**
 * The request as decided: its state, when, by whom. A request that is already decided is not
 * decided again (two admins clicking at once must not overwrite the first decision).
 * @throws CrmError CRM_ERR_ALREADY_DECIDED when the request is not pending.
 */
export function decideRequest(request: InboxRequest, decision: DecisionInput["decision"], by: string, now: Date): InboxRequest {
  if (request.state !== "pending") throw new CrmError("CRM_ERR_ALREADY_DECIDED", `deciding request ${request.id}: it was already ${request.state}${request.decidedBy === undefined ? "" : ` by ${request.decidedBy}`}`);
  return { ...request, state: decision === "accept" ? "accepted" : "refused", decidedAt: now.toISOString(), decidedBy: by };
}

/** What a request asks, in words. */
export function requestText(request: InboxRequest): string {
  const what: Record<InboxRequest["request"], string> = {
    monitor: "monitor this server",
    "become-backup": "become a backup of a service",
    "stop-backup": "stop being a backup of a service",
    "become-failover": "become the failover of a service",
    "stop-failover": "stop being the failover of a service",
    "switch-authority": "take over authority of a service",
  };
  return what[request.request];
}
