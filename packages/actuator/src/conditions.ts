import type { Condition } from "@coyote/spec";

/** A condition before its transition time is settled. */
export type ConditionUpdate = Omit<Condition, "lastTransitionTime">;

/**
 * Merges updates into a list of conditions the Kubernetes way: `lastTransitionTime` moves only
 * when a condition's status flips; reason, message and observedGeneration follow the update.
 * Conditions not named in `updates` are dropped when `replace` is set (an actuator that no longer
 * exists), and kept otherwise.
 */
export function mergeConditions(existing: readonly Condition[], updates: readonly ConditionUpdate[], now: string, replace = true): Condition[] {
  const byType = new Map(existing.map((c) => [c.type, c]));
  const merged: Condition[] = updates.map((update) => {
    const old = byType.get(update.type);
    return { ...update, lastTransitionTime: old && old.status === update.status ? old.lastTransitionTime : now };
  });
  if (!replace) {
    for (const old of existing) if (!updates.some((u) => u.type === old.type)) merged.push(old);
  }
  return merged;
}

/** Finds a condition by type. */
export function conditionOf(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}
