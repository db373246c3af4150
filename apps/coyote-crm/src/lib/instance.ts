import { crmEnv } from "./env.ts";
import { openDb, type CrmDb } from "./db.ts";

// One connection per process, shared by the custom server and the app's bundled code (which are
// separate module instances of this file), through a global symbol.
const KEY = Symbol.for("coyote.crm.db");

type Holder = { [KEY]?: { file: string; db: CrmDb } };

/** The crm database of this process, opened on first use (again when the state folder changed). */
export function crmDb(): CrmDb {
  const holder = globalThis as Holder;
  const file = crmEnv().dbFile;
  const open = holder[KEY];
  if (open?.file === file) return open.db;
  open?.db.$client.close();
  const db = openDb(file);
  holder[KEY] = { file, db };
  return db;
}

/** Closes the process's database connection (when the crm stops). */
export function closeCrmDb(): void {
  const holder = globalThis as Holder;
  holder[KEY]?.db.$client.close();
  holder[KEY] = undefined;
}
