import { randomBytes } from "node:crypto";
import type { CoyoteLogger } from "@coyote/log";
import type { Alarm, StateStore } from "@coyote/spec";

/** What an alarm says, apart from its key and state. */
export interface AlarmFields {
  readonly code: string;
  readonly severity: Alarm["severity"];
  readonly message: string;
  readonly serviceId?: string;
}

/**
 * The minion's open alarms, by key: raising an open alarm again with the same message writes
 * nothing, so a sweep can run every few seconds without growing `alarms.jsonl`; clearing writes
 * one line under the id of the raise.
 */
export class AlarmBook {
  readonly #store: StateStore;
  readonly #logger: CoyoteLogger;
  readonly #open = new Map<string, { id: string; message: string }>();

  /** Makes an empty book; {@link AlarmBook.load} fills it from what an earlier run left open. */
  constructor(store: StateStore, logger: CoyoteLogger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Reads the minion's alarms still open from `alarms.jsonl`. */
  async load(): Promise<void> {
    const { alarms } = await this.#store.readAlarms();
    for (const alarm of alarms) {
      if (alarm.source !== "minion") continue;
      if (alarm.state === "raised") this.#open.set(alarm.key, { id: alarm.id, message: alarm.message });
      else this.#open.delete(alarm.key);
    }
  }

  /** The keys of the open alarms that start with `prefix`. */
  openKeys(prefix: string): string[] {
    return [...this.#open.keys()].filter((key) => key.startsWith(prefix));
  }

  /** Whether an alarm is open under `key`. */
  isOpen(key: string): boolean {
    return this.#open.has(key);
  }

  /** Raises (or restates, when its message changed) the alarm of `key`. */
  async raise(key: string, fields: AlarmFields, now: Date): Promise<void> {
    const message = fields.message.slice(0, 2000);
    const open = this.#open.get(key);
    if (open?.message === message) return;
    const id = open?.id ?? `al-${randomBytes(6).toString("hex")}`;
    await this.#store.appendAlarm({ schemaVersion: 1, id, key, state: "raised", severity: fields.severity, source: "minion", ...(fields.serviceId === undefined ? {} : { serviceId: fields.serviceId }), code: fields.code, message, at: now.toISOString() });
    this.#open.set(key, { id, message });
    this.#logger.event("ALARM_RAISED", { alarmId: id, key, code: fields.code, ...(fields.serviceId === undefined ? {} : { serviceId: fields.serviceId }) }, message);
  }

  /** Clears the alarm of `key` when one is open. */
  async clear(key: string, fields: Omit<AlarmFields, "message">, message: string, now: Date): Promise<void> {
    const open = this.#open.get(key);
    if (!open) return;
    await this.#store.appendAlarm({ schemaVersion: 1, id: open.id, key, state: "cleared", severity: fields.severity, source: "minion", ...(fields.serviceId === undefined ? {} : { serviceId: fields.serviceId }), code: fields.code, message: message.slice(0, 2000), at: now.toISOString() });
    this.#open.delete(key);
    this.#logger.event("ALARM_CLEARED", { alarmId: open.id, key, code: fields.code, ...(fields.serviceId === undefined ? {} : { serviceId: fields.serviceId }) }, message);
  }
}
