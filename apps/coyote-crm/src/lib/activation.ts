import { timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import { ACTIVATION_SECRET, type StateStore } from "@coyote/spec";
import type { CrmDb } from "./db.ts";
import { settings, users } from "./schema.ts";

/** The wizard's steps in order, with their paths and titles. */
export const WIZARD_STEPS = [
  { id: "admin", path: "/activate", title: "Admin account" },
  { id: "alarms", path: "/activate/alarms", title: "Alarms" },
  { id: "keys", path: "/activate/keys", title: "API keys" },
  { id: "buddy", path: "/activate/buddy", title: "Buddy server" },
  { id: "finish", path: "/activate/finish", title: "Open the shop" },
] as const;

/** One step's id. */
export type WizardStepId = (typeof WIZARD_STEPS)[number]["id"];

const STEP_KEY = "activation.step";
const BUDDY_SKIPPED_KEY = "activation.buddySkipped";

/** Normalises a typed token: case, spaces and hyphens do not matter (it is read aloud or retyped). */
export function normaliseToken(token: string): string {
  return token.toUpperCase().replace(/[\s-]/g, "");
}

/** Whether a typed token is the box's activation token (constant time). False when there is none. */
export async function tokenMatches(store: StateStore, typed: string): Promise<boolean> {
  const stored = (await store.readSecret(ACTIVATION_SECRET))?.toString("utf8");
  if (stored === undefined) return false;
  const a = Buffer.from(normaliseToken(stored));
  const b = Buffer.from(normaliseToken(typed));
  return a.length > 0 && a.length === b.length && timingSafeEqual(a, b);
}

/** Forgets the activation token once the box is activated: it must not open anything again. */
export async function dropActivationToken(store: StateStore): Promise<void> {
  await store.removeSecret(ACTIVATION_SECRET);
}

/** The admin account the wizard's first step makes. */
export interface FirstAdmin {
  readonly id: string;
  readonly email: string;
  readonly passwordHash: string;
  readonly createdAt: string;
}

const ADMIN_CLAIM_KEY = "activation.admin";

/**
 * Creates the box's first admin, unless one exists: the check, the claim and the insert are one
 * immediate transaction, and the claim is a row under a primary key, so of two activations that
 * both passed the earlier checks (even in two processes) only the first makes an admin. The
 * claim also uses up the activation token for making admins: it can make no second one.
 * @returns whether this call made the admin.
 */
export function createFirstAdmin(db: CrmDb, admin: FirstAdmin): boolean {
  return db.transaction(
    (tx) => {
      if (tx.select({ id: users.id }).from(users).where(eq(users.role, "admin")).limit(1).get() !== undefined) return false;
      const claimed = tx.insert(settings).values({ key: ADMIN_CLAIM_KEY, value: admin.id }).onConflictDoNothing().run().changes === 1;
      if (!claimed) return false;
      tx.insert(users).values({ ...admin, role: "admin" }).run();
      return true;
    },
    { behavior: "immediate" },
  );
}

/** Whether an admin account exists. */
export function adminExists(db: CrmDb): boolean {
  return db.select({ id: users.id }).from(users).where(eq(users.role, "admin")).limit(1).get() !== undefined;
}

function getSetting(db: CrmDb, key: string): string | undefined {
  return db.select().from(settings).where(eq(settings.key, key)).get()?.value;
}

function setSetting(db: CrmDb, key: string, value: string): void {
  db.insert(settings).values({ key, value }).onConflictDoUpdate({ target: settings.key, set: { value } }).run();
}

/** The furthest step the wizard has reached. */
export function reachedStep(db: CrmDb): WizardStepId {
  const stored = getSetting(db, STEP_KEY);
  return WIZARD_STEPS.find((s) => s.id === stored)?.id ?? (adminExists(db) ? "alarms" : "admin");
}

/** Moves the wizard on to `step` (never back: revisiting an earlier step keeps the progress). */
export function advanceTo(db: CrmDb, step: WizardStepId): void {
  const index = (id: WizardStepId) => WIZARD_STEPS.findIndex((s) => s.id === id);
  if (index(step) > index(reachedStep(db))) setSetting(db, STEP_KEY, step);
}

/** Whether a step may be shown now: it is the reached one or an earlier one. */
export function stepOpen(db: CrmDb, step: WizardStepId): boolean {
  const index = (id: WizardStepId) => WIZARD_STEPS.findIndex((s) => s.id === id);
  return index(step) <= index(reachedStep(db));
}

/** Records whether the buddy step was skipped (the panel then warns). */
export function setBuddySkipped(db: CrmDb, skipped: boolean): void {
  setSetting(db, BUDDY_SKIPPED_KEY, skipped ? "1" : "0");
}

/** Whether the buddy step was skipped. */
export function buddySkipped(db: CrmDb): boolean {
  return getSetting(db, BUDDY_SKIPPED_KEY) === "1";
}
