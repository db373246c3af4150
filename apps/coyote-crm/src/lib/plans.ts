import { asc, eq } from "drizzle-orm";
import { z } from "zod";
import type { CrmDb } from "./db.ts";
import { plans } from "./schema.ts";

/** A plan as stored. */
export type Plan = typeof plans.$inferSelect;

/** The mailboxes a plan includes unless the admin says otherwise (the signup's own one among them). */
export const DEFAULT_MAX_MAILBOXES = 5;
/** The aliases a plan includes unless the admin says otherwise. */
export const DEFAULT_MAX_ALIASES = 10;
/** The most of either a plan may include (a service spec holds at most 10,000 mailboxes). */
export const MAX_PLAN_ACCOUNTS = 1000;

/** A whole number from `min` to {@link MAX_PLAN_ACCOUNTS}, typed in a form field. */
function countField(what: string, min: number) {
  const error = `the number of ${what} is a whole number from ${min} to ${MAX_PLAN_ACCOUNTS}`;
  return z
    .string({ error })
    .trim()
    .regex(/^\d{1,4}$/, { error })
    .transform(Number)
    .pipe(z.number().min(min, { error }).max(MAX_PLAN_ACCOUNTS, { error }));
}

/** A plan as the admin edits it. */
export const PlanInput = z
  .object({
    id: z
      .string()
      .trim()
      .regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, { error: "a plan id is 1-32 of a-z, 0-9 and inner hyphens (it appears in the signup link)" }),
    name: z.string().trim().min(1, { error: "give the plan a name" }).max(60),
    description: z.string().trim().max(500),
    price: z
      .string()
      .trim()
      .regex(/^\d{1,6}(\.\d{1,2})?$/, { error: "a price per month like 4 or 4.50 (0 for free)" })
      .transform((v) => Math.round(Number(v) * 100)),
    web: z.literal("on").optional(),
    mail: z.literal("on").optional(),
    xmpp: z.literal("on").optional(),
    active: z.literal("on").optional(),
    sortOrder: z.coerce.number().int().min(0).max(1000).default(0),
    maxMailboxes: countField("mailboxes", 1).default(DEFAULT_MAX_MAILBOXES),
    maxAliases: countField("aliases", 0).default(DEFAULT_MAX_ALIASES),
  })
  .refine((p) => p.web === "on" || p.mail === "on" || p.xmpp === "on", { path: ["web"], error: "a plan includes at least one of web, mail and XMPP" });

/** Every plan in the shop's order. */
export function listPlans(db: CrmDb): Plan[] {
  return db.select().from(plans).orderBy(asc(plans.sortOrder), asc(plans.name)).all();
}

/** The plans customers can sign up for. */
export function activePlans(db: CrmDb): Plan[] {
  return listPlans(db).filter((p) => p.active);
}

/** One plan. */
export function getPlan(db: CrmDb, id: string): Plan | undefined {
  return db.select().from(plans).where(eq(plans.id, id)).get();
}

/** A plan to save: the admin's checked input, whose limits may be left to their defaults. */
export type PlanSave = Omit<z.output<typeof PlanInput>, "maxMailboxes" | "maxAliases"> & { readonly maxMailboxes?: number; readonly maxAliases?: number };

/** Creates or replaces a plan from the admin's input (the limits take their defaults when not given). */
export function savePlan(db: CrmDb, input: PlanSave): Plan {
  const row = {
    id: input.id,
    name: input.name,
    description: input.description,
    priceCents: input.price,
    web: input.web === "on",
    mail: input.mail === "on",
    xmpp: input.xmpp === "on",
    active: input.active === "on",
    sortOrder: input.sortOrder,
    maxMailboxes: input.maxMailboxes ?? DEFAULT_MAX_MAILBOXES,
    maxAliases: input.maxAliases ?? DEFAULT_MAX_ALIASES,
  };
  const existing = getPlan(db, input.id);
  if (existing === undefined) db.insert(plans).values({ ...row, createdAt: new Date().toISOString() }).run();
  else db.update(plans).set(row).where(eq(plans.id, input.id)).run();
  const saved = getPlan(db, input.id);
  if (saved === undefined) throw new Error(`saving plan ${input.id}: it is not there after the write`);
  return saved;
}

/** The plan a freshly activated box offers, so that the shop is never empty; the admin edits it. */
export function ensureDefaultPlan(db: CrmDb): void {
  if (listPlans(db).length > 0) return;
  db.insert(plans)
    .values({ id: "starter", name: "Starter", description: "A website with HTTPS, a mailbox and an XMPP account on your domain.", priceCents: 0, web: true, mail: true, xmpp: true, active: true, sortOrder: 0, createdAt: new Date().toISOString() })
    .run();
}

/** A price for people: "free" or "4.50 / month". */
export function priceText(cents: number): string {
  return cents === 0 ? "free" : `${(cents / 100).toFixed(2)} / month`;
}
