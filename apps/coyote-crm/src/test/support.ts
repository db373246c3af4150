// Helpers for the crm's tests: a temp state folder with its store and database.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { StateStore } from "@coyote/spec";
import { openDb, type CrmDb } from "../lib/db.ts";

/** A fresh state folder, its store and a crm database in it. */
export interface Sandbox {
  readonly dir: string;
  readonly store: StateStore;
  readonly db: CrmDb;
  close(): Promise<void>;
}

/** Makes a {@link Sandbox}; `close` removes everything. */
export async function sandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), "crm-test-"));
  const store = await StateStore.open(dir, { author: { name: "test", email: "test@example.org" } });
  const db = openDb(join(dir, "crm", "crm.db"));
  return {
    dir,
    store,
    db,
    async close() {
      db.$client.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The test author of spec writes. */
export const AUTHOR = { name: "test", email: "test@example.org" };

/** A maker of sandboxes for one test file: every sandbox it made is removed after the file's tests. */
export function sandboxes(): () => Promise<Sandbox> {
  const made: Sandbox[] = [];
  after(async () => {
    for (const box of made) await box.close();
  });
  return async () => {
    const box = await sandbox();
    made.push(box);
    return box;
  };
}
