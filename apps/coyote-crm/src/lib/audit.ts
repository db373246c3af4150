import { desc } from "drizzle-orm";
import type { CrmDb } from "./db.ts";
import { auditLog } from "./schema.ts";

/** Records an admin action: who, what, on what, with details (never a secret). */
export function audit(db: CrmDb, actor: string, action: string, target: string, detail: Record<string, unknown> = {}): void {
  db.insert(auditLog).values({ at: new Date().toISOString(), actor, action, target, detail: JSON.stringify(detail) }).run();
}

/** The newest audit entries first. */
export function readAudit(db: CrmDb, limit = 200): Array<typeof auditLog.$inferSelect> {
  return db.select().from(auditLog).orderBy(desc(auditLog.id)).limit(limit).all();
}
