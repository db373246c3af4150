// The crm's view of the state folder: it writes specs through @coyote/spec (every write a commit)
// and reads what the daemons report (status, stats, alarms, inbox). It never talks to a daemon.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { ComponentStats, INBOX_DECISIONS_DIR, InboxDecision, InboxRequest, ServerSpec, ServiceStatus, serverOrDefaults, specPath, StateStore, withDecision } from "@coyote/spec";
import type { Alarm, ServiceSpec, SpecReadEntry, StoreAuthor } from "@coyote/spec";
import { crmEnv } from "./env.ts";

const stores = new Map<string, Promise<StateStore>>();

/** The state store of the crm's state folder, opened once per process. */
export function stateStore(stateDir = crmEnv().stateDir): Promise<StateStore> {
  let store = stores.get(stateDir);
  if (store === undefined) {
    store = StateStore.open(stateDir, { author: { name: "coyote-crm", email: "crm@coyote.invalid" } });
    store.catch(() => stores.delete(stateDir));
    stores.set(stateDir, store);
  }
  return store;
}

/** The author of a spec change made by a signed-in user. */
export function authorOf(email: string): StoreAuthor {
  return { name: email, email };
}

/** The server spec, or the defaults of a box that has none yet. */
export async function readServer(store: StateStore): Promise<ServerSpec> {
  return serverOrDefaults(await store.readJson(specPath("server"), ServerSpec));
}

/** The valid service specs among read specs. A bad file is left out here (the admin's service list names it). */
export function servicesOf(entries: readonly SpecReadEntry[]): ServiceSpec[] {
  return entries.flatMap((entry) => ("spec" in entry && entry.spec.kind === "Service" ? [entry.spec] : []));
}

/** Every valid service spec, each file read once. */
export async function readServices(store: Pick<StateStore, "readSpecs">): Promise<ServiceSpec[]> {
  return servicesOf(await store.readSpecs());
}

/** A service's status as the minion last wrote it, if any. */
export async function readStatus(store: StateStore, id: string): Promise<ServiceStatus | undefined> {
  return store.readJson(`status/${id}.json`, ServiceStatus).catch(() => undefined);
}

/** A component's stats file, if it wrote one (a bad or torn one reads as none). */
export async function readStats(store: StateStore, component: string): Promise<ComponentStats | undefined> {
  return store.readJson(`stats/${component}.json`, ComponentStats).catch(() => undefined);
}

/** An alarm as it stands now: its last line, and whether an admin acknowledged that raise. */
export interface CurrentAlarm extends Alarm {
  readonly raisedAt: string;
}

/**
 * The alarms as they stand: `alarms.jsonl` folded by key, the last line of each winning. Raised
 * ones first, newest first.
 */
export async function readAlarms(store: StateStore): Promise<CurrentAlarm[]> {
  const { alarms } = await store.readAlarms();
  const byKey = new Map<string, CurrentAlarm>();
  for (const alarm of alarms) {
    const before = byKey.get(alarm.key);
    const raisedAt = alarm.state === "raised" && before?.state !== "raised" ? alarm.at : (before?.raisedAt ?? alarm.at);
    byKey.set(alarm.key, { ...alarm, raisedAt });
  }
  return [...byKey.values()].sort((a, b) => (a.state === b.state ? b.at.localeCompare(a.at) : a.state === "raised" ? -1 : 1));
}

/**
 * The coyote requests in `inbox/`, each with the crm's decision from `inbox-decisions/` when there
 * is one, newest first; a bad file is reported, not dropped silently.
 */
export async function readInbox(store: StateStore): Promise<Array<{ file: string; request?: InboxRequest; error?: string }>> {
  const dir = store.path("inbox");
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json")).sort();
  const out: Array<{ file: string; request?: InboxRequest; error?: string }> = [];
  for (const file of files) {
    try {
      const request = await store.readJson(join("inbox", file), InboxRequest);
      if (request === undefined) continue;
      // The crm's decision lives in a file of its own: the request file is the listener's.
      const decision = await store.readJson(join(INBOX_DECISIONS_DIR, file), InboxDecision);
      out.push({ file, request: withDecision(request, decision) });
    } catch (error) {
      out.push({ file, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return out.sort((a, b) => (b.request?.receivedAt ?? "").localeCompare(a.request?.receivedAt ?? ""));
}
