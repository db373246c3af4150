import type { Metadata } from "next";
import { requireAdmin, csrfToken } from "../../../lib/auth.ts";
import type { FormState } from "../../../lib/forms.ts";
import { crmDb } from "../../../lib/instance.ts";
import { DEFAULT_MAX_ALIASES, DEFAULT_MAX_MAILBOXES, getPlan, listPlans, priceText, type Plan } from "../../../lib/plans.ts";
import { PlanForm } from "./PlanForm.tsx";
import { Table } from "../../../components/Table.tsx";

/** The page's title in the browser tab. */
export const metadata: Metadata = { title: "Plans" };

function parts(plan: Plan): string {
  const mail = plan.mail ? `mail (${plan.maxMailboxes} mailbox${plan.maxMailboxes === 1 ? "" : "es"}, ${plan.maxAliases} alias${plan.maxAliases === 1 ? "" : "es"})` : "";
  return [plan.web ? "web" : "", mail, plan.xmpp ? "XMPP" : ""].filter((p) => p !== "").join(", ");
}

/** The form's starting values for a plan being edited. */
function valuesOf(plan: Plan): FormState {
  const on = (b: boolean) => (b ? "on" : "");
  return {
    values: {
      editing: plan.id,
      id: plan.id,
      name: plan.name,
      description: plan.description,
      price: (plan.priceCents / 100).toFixed(2),
      web: on(plan.web),
      mail: on(plan.mail),
      xmpp: on(plan.xmpp),
      active: on(plan.active),
      sortOrder: String(plan.sortOrder),
      maxMailboxes: String(plan.maxMailboxes),
      maxAliases: String(plan.maxAliases),
    },
  };
}

/** The shop's plans and the form that creates one or edits the one named by `?edit=`. */
export default async function PlansPage({ searchParams }: { searchParams: Promise<Record<string, string | string[] | undefined>> }) {
  await requireAdmin();
  const params = await searchParams;
  const editId = typeof params.edit === "string" ? params.edit : undefined;
  const db = crmDb();
  const plans = listPlans(db);
  const editing = editId === undefined ? undefined : getPlan(db, editId);
  const initial: FormState = editing === undefined ? { values: { active: "on", web: "on", sortOrder: "0", maxMailboxes: String(DEFAULT_MAX_MAILBOXES), maxAliases: String(DEFAULT_MAX_ALIASES) } } : valuesOf(editing);
  return (
    <>
      <h1>Plans</h1>
      <Table
        columns={["Name", "Price", "Parts", "Active", <span className="muted">Edit</span>]}
        items={plans}
        empty="No plans yet: the shop has nothing to sell until you create one."
        row={(plan) => (
          <tr key={plan.id} data-plan={plan.id}>
            <td>
              {plan.name} <span className="muted">({plan.id})</span>
            </td>
            <td>{priceText(plan.priceCents)}</td>
            <td>{parts(plan)}</td>
            <td>{plan.active ? <span className="badge ok">active</span> : <span className="badge">inactive</span>}</td>
            <td>
              <a href={`/admin/plans?edit=${encodeURIComponent(plan.id)}`}>Edit</a>
            </td>
          </tr>
        )}
      />
      <h2>{editing === undefined ? "New plan" : `Edit plan ${editing.name}`}</h2>
      {editing !== undefined && params.created === "1" ? (
        <p className="notice ok" role="status">
          Created plan {editing.name}.
        </p>
      ) : null}
      {editId !== undefined && editing === undefined ? (
        <p className="notice error" role="alert">
          There is no plan with id {editId}; you can create one below.
        </p>
      ) : null}
      <PlanForm key={editing?.id ?? "new"} csrf={await csrfToken()} initial={initial} />
    </>
  );
}
