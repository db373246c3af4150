// What a customer must publish to prove a domain of theirs, and whether the box has seen it: the
// panel shows the TXT record's exact name and value (or the name server to delegate the domain
// to) next to the minion's DomainVerified condition.
import { challengeName, challengeValue, needsProof, type ServerSpec, type Spec } from "@coyote/spec";
import type { ConditionView } from "./views.ts";

/** The proof of one domain as the customer's page shows it. */
export interface OwnershipView {
  readonly domain: string;
  /** The TXT record to set: its full name and its value (none when the spec holds no token). */
  readonly txt: { readonly name: string; readonly value: string } | undefined;
  /** The name server to delegate the domain to instead (the box's hostname). */
  readonly nameServer: string;
  /** `seen` once the box saw the proof (or an admin vouched), else `waiting`. */
  readonly state: "seen" | "waiting";
  /** What the box last saw, from the minion's condition, while waiting. */
  readonly lastLook: string | undefined;
}

/**
 * The domains of a service that need proof, with what to set and whether it was seen. A name under
 * the box's customer domain needs none and is left out.
 * @param spec the service spec (anything else gives an empty list).
 * @param server the box's names.
 * @param conditions the service's conditions (DomainVerified says whether the proofs were seen).
 */
export function ownershipOf(spec: Spec | undefined, server: Pick<ServerSpec, "hostname" | "customerDomain">, conditions: readonly ConditionView[]): OwnershipView[] {
  if (spec?.kind !== "Service") return [];
  const verified = conditions.find((c) => c.type === "DomainVerified");
  return spec.domains
    .filter((d) => spec.owner !== undefined && (needsProof(d, spec, server) || d.vouched !== undefined))
    .map((d) => {
      const txt = d.challenge === undefined ? undefined : { name: challengeName(d.name), value: challengeValue(d.challenge) };
      // One condition covers every domain of the service; while it is not True, its message names
      // each domain still missing and what was seen for it.
      const waiting = d.vouched === undefined && verified?.status !== "True";
      return { domain: d.name, txt, nameServer: server.hostname, state: waiting ? "waiting" : "seen", lastLook: waiting ? verified?.message : undefined };
    });
}
