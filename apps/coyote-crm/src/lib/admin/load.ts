// What the admin's pages and its JSON API read, gathered once so that a page and its live API
// answer from the same code. Reads only: every change goes through a server action.
import type { ServerSpec, ServiceSpec, ServiceStatus, StateStore } from "@coyote/spec";
import { ServiceId } from "@coyote/spec";
import type { CrmDb } from "../db.ts";
import { serviceSeries } from "../sampler.ts";
import { alarmAcks } from "../schema.ts";
import { readInbox, readServer, readStatus } from "../state.ts";
import { foldAlarms, unacknowledged, type AlarmBoard } from "./alarms.ts";
import { splitInbox, type InboxLists } from "./inbox.ts";
import { CHART_WINDOW_MS, serviceDetail, serviceRow, type InvalidServiceRow, type ServiceDetailPayload, type ServiceRow, type ServicesPayload } from "./live.ts";

/** Every service spec with its readiness; bad spec files listed with their error. */
export async function loadServices(store: StateStore): Promise<ServicesPayload> {
  const services: ServiceRow[] = [];
  const invalid: InvalidServiceRow[] = [];
  // Each spec file is read once: its parse is both the listing and the spec.
  for (const entry of await store.readSpecs()) {
    if (entry.id === "server") continue;
    if ("error" in entry) invalid.push({ id: entry.id, error: entry.error.message });
    else if (entry.spec.kind === "Service") services.push(serviceRow(entry.spec, await readStatus(store, entry.id)));
  }
  return { services, invalid };
}

/** One service as read: missing, a file that does not validate, or the spec with its status. */
export type LoadedService =
  | { readonly kind: "missing" }
  | { readonly kind: "invalid"; readonly error: string }
  | { readonly kind: "ok"; readonly spec: ServiceSpec; readonly status: ServiceStatus | undefined };

/** Reads one service by id; an id that cannot be a service id is simply missing. */
export async function loadService(store: StateStore, id: string): Promise<LoadedService> {
  if (!ServiceId.safeParse(id).success) return { kind: "missing" };
  let spec;
  try {
    spec = await store.getSpec(id);
  } catch (error) {
    return { kind: "invalid", error: error instanceof Error ? error.message : String(error) };
  }
  if (spec?.kind !== "Service") return { kind: "missing" };
  return { kind: "ok", spec, status: await readStatus(store, id) };
}

/** A service's detail (conditions and the last hour's chart points), or undefined when there is no valid spec. */
export async function loadServiceDetail(store: StateStore, db: CrmDb, id: string, now = Date.now()): Promise<ServiceDetailPayload | undefined> {
  const loaded = await loadService(store, id);
  if (loaded.kind !== "ok") return undefined;
  return serviceDetail(loaded.spec, loaded.status, serviceSeries(db, id, now - CHART_WINDOW_MS), now);
}

/** The alarms folded, with the acknowledgements, and the warnings about unreadable lines. */
export async function loadAlarmBoard(store: StateStore, db: CrmDb): Promise<AlarmBoard & { warnings: string[] }> {
  const { alarms, warnings } = await store.readAlarms();
  const acks = db.select().from(alarmAcks).all();
  return { ...foldAlarms(alarms, acks), warnings };
}

/** The overview's numbers. */
export interface Overview {
  readonly server: ServerSpec;
  readonly services: number;
  readonly invalidServices: number;
  readonly ready: number;
  readonly notReady: number;
  readonly pending: number;
  /** Raised alarms nobody acknowledged. */
  readonly raisedAlarms: number;
  readonly acknowledgedAlarms: number;
  readonly pendingInbox: number;
  readonly badInbox: number;
  readonly buddies: number;
}

/** Counts what the overview shows, from the pieces the other pages read. */
export function overviewOf(server: ServerSpec, services: ServicesPayload, alarms: AlarmBoard, inbox: InboxLists): Overview {
  const count = (state: string) => services.services.filter((s) => s.ready.state === state).length;
  const open = unacknowledged(alarms).length;
  return {
    server,
    services: services.services.length,
    invalidServices: services.invalid.length,
    ready: count("ready"),
    notReady: count("not-ready"),
    pending: count("pending"),
    raisedAlarms: open,
    acknowledgedAlarms: alarms.raised.length - open,
    pendingInbox: inbox.pending.length,
    badInbox: inbox.bad.length,
    buddies: server.buddies.length,
  };
}

/** Reads everything the overview counts. */
export async function loadOverview(store: StateStore, db: CrmDb): Promise<Overview> {
  const [server, services, alarms, inbox] = await Promise.all([readServer(store), loadServices(store), loadAlarmBoard(store, db), readInbox(store)]);
  return overviewOf(server, services, alarms, splitInbox(inbox));
}
