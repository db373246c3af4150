// The crm's own data (accounts, sessions, plans, audit log, stats history) in SQLite through
// Drizzle. Desired state of the box and its services is NOT here: it lives in the specs
// repository, written through @coyote/spec, so that the minion and the history see every change.
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Admins and customers. `passwordHash` is a `$scrypt$` PHC string; the password itself is never kept. */
export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  email: text("email").notNull().unique(),
  passwordHash: text("password_hash").notNull(),
  role: text("role", { enum: ["admin", "customer"] }).notNull(),
  createdAt: text("created_at").notNull(),
});

/** Signed-in sessions. Only the SHA-256 of the cookie's token is stored, so a copy of the database opens no session. */
export const sessions = sqliteTable(
  "sessions",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    createdAt: text("created_at").notNull(),
    expiresAt: text("expires_at").notNull(),
  },
  (t) => [index("sessions_user").on(t.userId)],
);

/** What the webshop sells. A plan decides which parts a signup's service gets. */
export const plans = sqliteTable("plans", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  description: text("description").notNull(),
  priceCents: integer("price_cents").notNull(),
  web: integer("web", { mode: "boolean" }).notNull(),
  mail: integer("mail", { mode: "boolean" }).notNull(),
  xmpp: integer("xmpp", { mode: "boolean" }).notNull(),
  active: integer("active", { mode: "boolean" }).notNull(),
  sortOrder: integer("sort_order").notNull(),
  createdAt: text("created_at").notNull(),
  /** How many mailboxes a service of the plan may have, the one its signup made included. */
  maxMailboxes: integer("max_mailboxes").notNull().default(5),
  /** How many mail aliases a service of the plan may have. */
  maxAliases: integer("max_aliases").notNull().default(10),
});

/** Which customer owns which service (the service spec carries the owner too; this is the index). */
export const customerServices = sqliteTable(
  "customer_services",
  {
    serviceId: text("service_id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    planId: text("plan_id").notNull(),
    domain: text("domain").notNull().unique(),
    mailAddress: text("mail_address"),
    xmppAddress: text("xmpp_address"),
    createdAt: text("created_at").notNull(),
  },
  (t) => [index("customer_services_user").on(t.userId)],
);

/** Every admin action, who did it and when: append-only. */
export const auditLog = sqliteTable("audit_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  at: text("at").notNull(),
  actor: text("actor").notNull(),
  action: text("action").notNull(),
  target: text("target").notNull(),
  detail: text("detail").notNull(),
});

/** Alarms an admin has acknowledged: by the id of the raising line, so a new raise needs a new acknowledgement. */
export const alarmAcks = sqliteTable("alarm_acks", {
  alarmId: text("alarm_id").primaryKey(),
  key: text("key").notNull(),
  by: text("by").notNull(),
  at: text("at").notNull(),
});

/**
 * Counted attempts per key (a client network, an account on a client network), for the back-off of
 * ratelimit.ts. Times are epoch milliseconds; a row is meaningless once `expiresAt` passed.
 */
export const attempts = sqliteTable("attempts", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull(),
  blockedUntil: integer("blocked_until").notNull(),
  expiresAt: integer("expires_at").notNull(),
});

/** Small settings of the crm itself (the activation wizard's progress). */
export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

/** Samples of the daemons' stats, so the panel can draw traffic and memory over time. */
export const statSamples = sqliteTable(
  "stat_samples",
  {
    at: integer("at").notNull(),
    serviceId: text("service_id").notNull(),
    requests: integer("requests").notNull(),
    bytesIn: integer("bytes_in").notNull(),
    bytesOut: integer("bytes_out").notNull(),
    errors: integer("errors").notNull(),
    memoryBytes: integer("memory_bytes"),
  },
  (t) => [primaryKey({ columns: [t.serviceId, t.at] })],
);
