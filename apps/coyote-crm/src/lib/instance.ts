import { crmEnv } from "./env.ts";
import { openDb, type CrmDb } from "./db.ts";

// One connection per process, shared by the custom server and the app's bundled code (which are
// separate module instances of this file), through a global symbol.
const KEY = Symbol.for("coyote.crm.db");

/** The crm database of this process, opened on first use. */
export function crmDb(): CrmDb {
  const holder = globalThis as { [KEY]?: CrmDb };
  holder[KEY] ??= openDb(crmEnv().dbFile);
  return holder[KEY];
}

/** Closes the process's database connection (when the crm stops). */
export function closeCrmDb(): void {
  const holder = globalThis as { [KEY]?: CrmDb };
  holder[KEY]?.$client.close();
  holder[KEY] = undefined;
}
