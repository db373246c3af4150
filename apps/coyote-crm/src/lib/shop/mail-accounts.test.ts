import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eq } from "drizzle-orm";
import { doveadmVerifies, scramVerifies, serviceSpec, signedUpCustomer, storedHash, type Customer } from "../../test/accounts.ts";
import { readAudit } from "../audit.ts";
import { getPlan, savePlan } from "../plans.ts";
import { LIMITS } from "../ratelimit.ts";
import { plans } from "../schema.ts";
import { changeMail, mailAccountsOf, type MailAccountDeps, type MailAccountResult, type MailChangeKind } from "./mail-accounts.ts";

const BOX_PASSWORD = "Hazel-lighthouse-copper-58";

function deps(c: Customer, overrides: Partial<MailAccountDeps> = {}): MailAccountDeps {
  return { db: c.box.db, store: c.box.store, user: c.user, ...overrides };
}

function said(result: MailAccountResult, field?: string): string {
  if (result.ok) return `(it succeeded: ${result.message})`;
  return (field === undefined ? result.message : result.errors?.[field]) ?? JSON.stringify(result);
}

async function change(c: Customer, kind: MailChangeKind, fields: Record<string, unknown>): Promise<MailAccountResult> {
  return changeMail(deps(c), kind, { service: c.serviceId, ...fields });
}

function addMailbox(c: Customer, local: string, extra: Record<string, string> = {}): Promise<MailAccountResult> {
  return change(c, "add-mailbox", { mailbox: local, password: BOX_PASSWORD, confirm: BOX_PASSWORD, ...extra });
}

function setLimits(c: Customer, maxMailboxes: number, maxAliases: number): void {
  c.box.db.update(plans).set({ maxMailboxes, maxAliases }).where(eq(plans.id, "starter")).run();
}

describe("changeMail", () => {
  it("adds a mailbox whose own password reaches the spec as a credential, and removes it", async () => {
    const c = await signedUpCustomer();
    try {
      const added = await addMailbox(c, "  Sales.Team ");
      assert.deepEqual(added, { ok: true, message: "Added the mailbox sales.team@alice.box.test." });
      const spec = await serviceSpec(c);
      assert.deepEqual(spec.mail?.mailboxes.map((b) => b.address), ["alice@alice.box.test", "sales.team@alice.box.test"]);
      const hash = (await storedHash(c, "mail", "sales.team@alice.box.test")) ?? "";
      assert.match(hash, /^\{SCRAM-SHA-256\}/, "the service's scheme");
      assert.equal(scramVerifies(hash, BOX_PASSWORD), true);
      const dovecot = doveadmVerifies(hash, BOX_PASSWORD);
      if (dovecot !== undefined) assert.equal(dovecot, true, "Dovecot verifies the mailbox's password");
      assert.equal(spec.xmpp?.users.length, 1, "a mailbox makes no chat account");
      const [last] = await c.box.store.history(c.serviceId, 1);
      assert.equal(last?.author.email, c.user.email);
      assert.doesNotMatch(JSON.stringify(readAudit(c.box.db)), /SCRAM|Hazel/);
      assert.deepEqual(readAudit(c.box.db).map((e) => [e.action, e.target]).slice(0, 1), [["mail.mailbox.add", "sales.team@alice.box.test"]]);

      const credential = spec.mail.mailboxes[1]?.credential ?? "";
      const removed = await change(c, "remove-mailbox", { address: "sales.team@alice.box.test" });
      assert.ok(removed.ok, said(removed));
      assert.deepEqual((await serviceSpec(c)).mail?.mailboxes.map((b) => b.address), ["alice@alice.box.test"]);
      assert.equal(await c.box.store.readSecret(credential), undefined, "the removed mailbox's credential is gone");
    } finally {
      await c.box.close();
    }
  });

  it("keeps mailboxes and aliases within the plan's limits", async () => {
    const c = await signedUpCustomer();
    try {
      setLimits(c, 2, 1);
      assert.ok((await addMailbox(c, "second")).ok);
      assert.match(said(await addMailbox(c, "third")), /your plan \(Starter\) includes 2 mailboxes and you have 2; remove one first/);
      assert.ok((await change(c, "add-alias", { alias: "postmaster", to: "alice@alice.box.test" })).ok);
      assert.match(said(await change(c, "add-alias", { alias: "abuse", to: "alice@alice.box.test" })), /includes 1 alias and you have 1/);
      setLimits(c, 2, 0);
      assert.match(said(await change(c, "remove-alias", { address: "nothing@alice.box.test" })), /there is no alias "nothing@alice.box.test" to remove/);
      assert.ok((await change(c, "remove-alias", { address: "postmaster@alice.box.test" })).ok);
      assert.match(said(await change(c, "add-alias", { alias: "abuse", to: "alice@alice.box.test" })), /includes no aliases/);
      const spec = await serviceSpec(c);
      assert.equal(spec.mail?.mailboxes.length, 2);
      assert.equal(spec.mail.aliases.length, 0);
    } finally {
      await c.box.close();
    }
  });

  it("refuses every bad field by name and changes nothing", async () => {
    const c = await signedUpCustomer();
    try {
      assert.ok((await change(c, "add-alias", { alias: "hello", to: "alice@alice.box.test" })).ok);
      const before = await serviceSpec(c);
      const cases: Array<[MailChangeKind, Record<string, unknown>, string | undefined, RegExp]> = [
        ["add-mailbox", { mailbox: "bad name", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /not a space/],
        ["add-mailbox", { mailbox: "x+y", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /not "\+"/],
        ["add-mailbox", { mailbox: "postmaster", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /role address/],
        ["add-mailbox", { mailbox: "mailer-daemon", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /reserved for the mail system/],
        ["add-mailbox", { mailbox: "alice", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /alice@alice\.box\.test exists already/],
        ["add-mailbox", { mailbox: "hello", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailbox", /hello@alice\.box\.test exists already/],
        ["add-mailbox", { mailbox: "new", mailboxDomain: "evil.org", password: BOX_PASSWORD, confirm: BOX_PASSWORD }, "mailboxDomain", /choose one of your domains: alice\.box\.test/],
        ["add-mailbox", { mailbox: "new", password: "short", confirm: "short" }, "password", /at least 10 characters/],
        ["add-mailbox", { mailbox: "newsletter", password: "my-newsletter-box", confirm: "my-newsletter-box" }, "password", /name of your e-mail address \(newsletter\)/],
        ["add-mailbox", { mailbox: "new", password: BOX_PASSWORD, confirm: "other-password-22" }, "confirm", /differ/],
        ["add-mailbox", { mailbox: ["a"], password: { x: 1 } }, "mailbox", /enter the part of the address before the @/],
        ["add-alias", { alias: "fwd", to: "someone@gmail.com" }, "to", /choose one of your mailboxes: alice@alice\.box\.test/],
        ["add-alias", { alias: "fwd", to: "hello@alice.box.test" }, "to", /choose one of your mailboxes/],
        ["add-alias", { alias: "root", to: "alice@alice.box.test" }, "alias", /reserved/],
        ["remove-mailbox", { address: "alice@alice.box.test" }, undefined, /your account's own mailbox; it stays/],
        ["remove-mailbox", { address: "ghost@alice.box.test" }, undefined, /there is no mailbox "ghost@alice\.box\.test" to remove/],
        ["remove-alias", { address: "alice@alice.box.test" }, undefined, /there is no alias/],
      ];
      for (const [kind, fields, field, says] of cases) assert.match(said(await change(c, kind, fields), field), says, `${kind} ${JSON.stringify(fields)}`);
      assert.deepEqual(await serviceSpec(c), before, "nothing changed");
    } finally {
      await c.box.close();
    }
  });

  it("keeps a mailbox while an alias forwards to it", async () => {
    const c = await signedUpCustomer();
    try {
      assert.ok((await addMailbox(c, "shop")).ok);
      assert.ok((await change(c, "add-alias", { alias: "orders", to: "shop@alice.box.test" })).ok);
      assert.match(said(await change(c, "remove-mailbox", { address: "shop@alice.box.test" })), /first remove the aliases that forward to shop@alice\.box\.test: orders@alice\.box\.test/);
      const view = mailAccountsOf(await serviceSpec(c), { mailAddress: "alice@alice.box.test" }, getPlan(c.box.db, "starter"));
      assert.deepEqual(view?.mailboxes, [
        { address: "alice@alice.box.test", own: true, forwardedFrom: [] },
        { address: "shop@alice.box.test", own: false, forwardedFrom: ["orders@alice.box.test"] },
      ]);
    } finally {
      await c.box.close();
    }
  });

  it("answers only the service's owner, and only for a plan with mail", async () => {
    const c = await signedUpCustomer();
    try {
      const stranger = { id: "someone-else", email: "mallory@mail.example" };
      const result = await changeMail(deps(c, { user: stranger }), "add-mailbox", { service: c.serviceId, mailbox: "x", password: BOX_PASSWORD, confirm: BOX_PASSWORD });
      assert.match(said(result), /you have no service "alice-box-test"/);
      savePlan(c.box.db, { id: "starter", name: "Starter", description: "", price: 0, web: "on", xmpp: "on", active: "on", sortOrder: 0 });
      assert.match(said(await addMailbox(c, "x")), /alice\.box\.test has no mail in its plan/);
    } finally {
      await c.box.close();
    }
  });

  it("limits how many changes an account makes in a while", async () => {
    const c = await signedUpCustomer();
    try {
      let last: MailAccountResult | undefined;
      for (let i = 0; i <= LIMITS.accountEditPerAccount.max; i++) last = await change(c, "remove-alias", { address: `none${i}@alice.box.test` });
      assert.match(last === undefined ? "" : said(last), /you made many changes in a short while; try again in \d+ second/);
    } finally {
      await c.box.close();
    }
  });
});

describe("a mailbox's own password", () => {
  it("is set anew through the spec for a mailbox the customer added, never for the account's own", async () => {
    const c = await signedUpCustomer();
    try {
      assert.ok((await addMailbox(c, "desk")).ok);
      const before = (await storedHash(c, "mail", "desk@alice.box.test")) ?? "";
      const next = "Juniper-canyon-otter-31";
      const set = await change(c, "set-mailbox-password", { address: "desk@alice.box.test", mailboxPassword: next, mailboxConfirm: next });
      assert.deepEqual(set, { ok: true, message: "The mailbox desk@alice.box.test has its new password." });
      const after = (await storedHash(c, "mail", "desk@alice.box.test")) ?? "";
      assert.notEqual(after, before);
      assert.equal(scramVerifies(after, next), true);
      assert.equal(scramVerifies(after, BOX_PASSWORD), false, "the old password no longer works");
      assert.equal(scramVerifies((await storedHash(c, "mail", "alice@alice.box.test")) ?? "", "correct horse battery"), true, "the account's own mailbox is untouched");

      const spec = await serviceSpec(c);
      const cases: Array<[Record<string, string>, string, RegExp]> = [
        [{ address: "alice@alice.box.test", mailboxPassword: next, mailboxConfirm: next }, "address", /uses your account's password; change it on the password page/],
        [{ address: "ghost@alice.box.test", mailboxPassword: next, mailboxConfirm: next }, "address", /choose one of your mailboxes/],
        [{ address: "desk@alice.box.test", mailboxPassword: "short", mailboxConfirm: "short" }, "mailboxPassword", /at least 10 characters/],
        [{ address: "desk@alice.box.test", mailboxPassword: next, mailboxConfirm: `${next}!` }, "mailboxConfirm", /differ/],
      ];
      for (const [fields, field, says] of cases) assert.match(said(await change(c, "set-mailbox-password", fields), field), says);
      assert.deepEqual(await serviceSpec(c), spec, "a refused change changes nothing");
    } finally {
      await c.box.close();
    }
  });
});
