import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { drizzle, type BetterSQLite3Database } from "drizzle-orm/better-sqlite3";
import * as schema from "./schema.ts";

/** The crm's database, typed by its Drizzle schema. */
export type CrmDb = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

/**
 * The migrations, in order; `PRAGMA user_version` says how many have run. A migration is never
 * edited once released: a change is a new entry.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL,
     role TEXT NOT NULL CHECK (role IN ('admin', 'customer')), created_at TEXT NOT NULL);
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
   CREATE INDEX sessions_user ON sessions(user_id);
   CREATE TABLE plans (
     id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, price_cents INTEGER NOT NULL,
     web INTEGER NOT NULL, mail INTEGER NOT NULL, xmpp INTEGER NOT NULL, active INTEGER NOT NULL,
     sort_order INTEGER NOT NULL, created_at TEXT NOT NULL);
   CREATE TABLE customer_services (
     service_id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     plan_id TEXT NOT NULL, domain TEXT NOT NULL UNIQUE, mail_address TEXT, xmpp_address TEXT,
     created_at TEXT NOT NULL);
   CREATE INDEX customer_services_user ON customer_services(user_id);
   CREATE TABLE audit_log (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
     target TEXT NOT NULL, detail TEXT NOT NULL);
   CREATE TABLE alarm_acks (alarm_id TEXT PRIMARY KEY, key TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL);
   CREATE TABLE login_failures (key TEXT PRIMARY KEY, count INTEGER NOT NULL, window_start INTEGER NOT NULL);
   CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE stat_samples (
     at INTEGER NOT NULL, service_id TEXT NOT NULL, requests INTEGER NOT NULL, bytes_in INTEGER NOT NULL,
     bytes_out INTEGER NOT NULL, errors INTEGER NOT NULL, memory_bytes INTEGER,
     PRIMARY KEY (service_id, at));`,
  // Back-off instead of fixed windows; the old counts are dropped (at worst a limit starts afresh).
  `DROP TABLE login_failures;
   CREATE TABLE attempts (key TEXT PRIMARY KEY, failures INTEGER NOT NULL, blocked_until INTEGER NOT NULL, expires_at INTEGER NOT NULL);
   CREATE INDEX attempts_expiry ON attempts(expires_at);`,
  // What a plan's customers may add themselves: mailboxes (the signup's own one included) and aliases.
  `ALTER TABLE plans ADD COLUMN max_mailboxes INTEGER NOT NULL DEFAULT 5;
   ALTER TABLE plans ADD COLUMN max_aliases INTEGER NOT NULL DEFAULT 10;`,
];

/**
 * Opens (creating if needed) the crm database at `file` and brings it to the newest schema.
 * WAL mode lets the panel read while another connection (the stats sampler) writes.
 */
export function openDb(file: string): CrmDb {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const sqlite = new Database(file);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("busy_timeout = 5000");
  const version = sqlite.pragma("user_version", { simple: true }) as number;
  for (let i = version; i < MIGRATIONS.length; i++) {
    const migrate = sqlite.transaction(() => {
      sqlite.exec(MIGRATIONS[i] ?? "");
      sqlite.pragma(`user_version = ${i + 1}`);
    });
    migrate.immediate();
  }
  return drizzle({ client: sqlite, schema });
}
