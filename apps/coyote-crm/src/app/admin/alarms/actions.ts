"use server";
import { revalidatePath } from "next/cache";
import { z } from "zod";
import { loadAlarmBoard } from "../../../lib/admin/load.ts";
import { audit } from "../../../lib/audit.ts";
import { csrfValid, requireAdmin } from "../../../lib/auth.ts";
import { CSRF_FAILED, fieldErrors, type FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { alarmAcks } from "../../../lib/schema.ts";
import { stateStore } from "../../../lib/state.ts";

const AckInput = z.object({ alarmId: z.string().min(8).max(64) });

/** Acknowledges the current raise of an alarm: it stays listed, with who and when, and leaves the overview's count. */
export async function acknowledgeAlarm(_prev: FormState, form: FormData): Promise<FormState> {
  const admin = await requireAdmin();
  if (!(await csrfValid(form))) return CSRF_FAILED;
  const parsed = AckInput.safeParse(Object.fromEntries(form));
  if (!parsed.success) return { errors: fieldErrors(parsed.error), message: "acknowledging an alarm: no alarm given" };
  const db = crmDb();
  // Only a raise that is still current can be acknowledged; a stale page may show one already cleared.
  const board = await loadAlarmBoard(await stateStore(), db);
  const alarm = board.raised.find((a) => a.raiseId === parsed.data.alarmId);
  if (alarm === undefined) {
    revalidatePath("/admin", "layout");
    return { message: "acknowledging an alarm: it is no longer raised" };
  }
  db.insert(alarmAcks).values({ alarmId: alarm.raiseId, key: alarm.key, by: admin.email, at: new Date().toISOString() }).onConflictDoNothing().run();
  audit(db, admin.email, "alarm.acknowledge", alarm.key, { alarmId: alarm.raiseId, code: alarm.code, severity: alarm.severity });
  revalidatePath("/admin", "layout");
  return { ok: true, message: "Acknowledged." };
}
