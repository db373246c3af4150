import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { eq } from "drizzle-orm";
import type { StateStore } from "@coyote/spec";
import { doveadmVerifies, scramVerifies, serviceSpec, SIGNUP_PASSWORD, signedUpCustomer, storedHash, type Customer } from "../../test/accounts.ts";
import { readAudit } from "../audit.ts";
import { verifyPassword } from "../passwords.ts";
import { LIMITS } from "../ratelimit.ts";
import { auditLog, customerServices, sessions, users } from "../schema.ts";
import { createSession } from "../sessions.ts";
import { checkSignIn } from "../signin.ts";
import { changePassword, type PasswordChangeDeps, type PasswordChangeResult } from "./password-change.ts";
import { signUp } from "./signup.ts";

const NEW = "Walnut-harbour-orchid-93";

function deps(c: Customer, overrides: Partial<PasswordChangeDeps> = {}): PasswordChangeDeps {
  return { db: c.box.db, store: c.box.store, user: c.user, clientAddress: "192.0.2.7", ...overrides };
}

function form(overrides: Record<string, string> = {}): Record<string, string> {
  return { current: SIGNUP_PASSWORD, password: NEW, confirm: NEW, ...overrides };
}

/** What a refused change says: its message, or one field's error. */
function said(result: PasswordChangeResult, field?: string): string {
  if (result.ok) return "(it succeeded)";
  return (field === undefined ? result.message : result.errors?.[field]) ?? "";
}

function panelHash(c: Customer): string {
  return c.box.db.select().from(users).where(eq(users.id, c.user.id)).get()?.passwordHash ?? "";
}

describe("changePassword", () => {
  it("moves the panel, the mailbox and the XMPP account to the new password, through the spec", async () => {
    const c = await signedUpCustomer();
    try {
      const address = `alice@${c.domain}`;
      const before = await serviceSpec(c);
      createSession(c.box.db, c.user.id);
      const result = await changePassword(deps(c), form());
      assert.deepEqual(result, { ok: true, services: [c.serviceId] });

      // The panel: the old password fails, the new one signs in.
      assert.equal(await verifyPassword(SIGNUP_PASSWORD, panelHash(c)), false);
      assert.equal(await verifyPassword(NEW, panelHash(c)), true);
      assert.equal(c.box.db.select().from(sessions).where(eq(sessions.userId, c.user.id)).all().length, 0, "the old password's sessions ended");

      // The spec: a new generation, new credentials for both accounts, the old ones gone from secrets/.
      const after = await serviceSpec(c);
      assert.equal(after.generation, (before.generation ?? 0) + 1);
      assert.notEqual(after.mail?.mailboxes[0]?.credential, before.mail?.mailboxes[0]?.credential);
      assert.notEqual(after.xmpp?.users[0]?.credential, before.xmpp?.users[0]?.credential);
      assert.equal(await c.box.store.readSecret(before.mail?.mailboxes[0]?.credential ?? ""), undefined, "the old mail credential is dropped");
      for (const [kind, account] of [["mail", address], ["xmpp", address]] as const) {
        const hash = (await storedHash(c, kind, account)) ?? "";
        assert.match(hash, /^\{SCRAM-SHA-256\}16384,/, `${kind} keeps the service's scheme`);
        assert.equal(scramVerifies(hash, NEW), true, `${kind} verifies the new password`);
        assert.equal(scramVerifies(hash, SIGNUP_PASSWORD), false, `${kind} refuses the old password`);
      }
      const mailHash = (await storedHash(c, "mail", address)) ?? "";
      const dovecot = doveadmVerifies(mailHash, NEW);
      if (dovecot !== undefined) assert.equal(dovecot, true, "Dovecot verifies the new credential");

      // The history says who and what, never the password nor a hash; so does the audit log.
      const [last] = await c.box.store.history(c.serviceId, 1);
      assert.equal(last?.author.email, c.user.email);
      assert.match(last.message, /changed their password/);
      const specText = await readFile(join(c.box.dir, "specs", "services", `${c.serviceId}.json`), "utf8");
      assert.doesNotMatch(specText, /SCRAM|passwordHash/);
      const entry = readAudit(c.box.db).find((e) => e.action === "account.password");
      assert.ok(entry !== undefined, "the change is in the audit log");
      assert.equal(entry.actor, c.user.email);
      assert.deepEqual(JSON.parse(entry.detail) as unknown, { ip: "192.0.2.7", services: [c.serviceId] });
      const auditText = JSON.stringify(c.box.db.select().from(auditLog).all());
      assert.ok(!auditText.includes(NEW) && !auditText.includes(SIGNUP_PASSWORD) && !auditText.includes("SCRAM"), "no secret in the audit log");
    } finally {
      await c.box.close();
    }
  });

  it("refuses a wrong current password, a weak or repeated new one, and changes nothing", async () => {
    const c = await signedUpCustomer();
    try {
      const spec = await serviceSpec(c);
      const hash = panelHash(c);
      const cases: Array<[Record<string, string>, string, RegExp]> = [
        [form({ current: "not-the-password-1" }), "current", /not your current password/],
        [form({ current: "" }), "current", /enter your current password/],
        [form({ password: "short", confirm: "short" }), "password", /at least 10 characters/],
        [form({ password: "password123", confirm: "password123" }), "password", /most common/],
        [form({ password: "alice-in-the-garden", confirm: "alice-in-the-garden" }), "password", /name of your e-mail address \(alice\)/],
        [form({ confirm: `${NEW}x` }), "confirm", /differ/],
        [form({ password: SIGNUP_PASSWORD, confirm: SIGNUP_PASSWORD }), "password", /the one you have now/],
      ];
      for (const [input, field, says] of cases) {
        const result = await changePassword(deps(c), input);
        assert.match(said(result, field), says, JSON.stringify(result));
      }
      const result = await changePassword(deps(c), { current: ["a"], password: { x: 1 } });
      assert.equal(result.ok, false, "fields of the wrong type are refused");
      assert.equal(panelHash(c), hash, "the panel's password is unchanged");
      assert.deepEqual(await serviceSpec(c), spec, "the spec is unchanged");
      assert.equal(readAudit(c.box.db).filter((e) => e.action === "account.password").length, 0);
    } finally {
      await c.box.close();
    }
  });

  it("throttles guesses of the current password like sign-ins, and changes per account", async () => {
    const c = await signedUpCustomer();
    try {
      for (let i = 0; i < LIMITS.loginPerAccountAddress.max; i++) await changePassword(deps(c), form({ current: `wrong-guess-${i}` }));
      const blocked = await changePassword(deps(c), form());
      assert.match(said(blocked), /too many wrong passwords from your network; try again in \d+ second/);
      assert.equal(await verifyPassword(SIGNUP_PASSWORD, panelHash(c)), true, "even the right password waits");
      // The same counters as the sign-in page: guessing here is guessing there.
      assert.equal((await checkSignIn(c.box.db, c.user.email, SIGNUP_PASSWORD, "192.0.2.7")).kind, "wait");

      // From another network, changes themselves are limited per account.
      let current = SIGNUP_PASSWORD;
      for (let i = 0; i < LIMITS.passwordChangePerAccount.max; i++) {
        const next = `Walnut-harbour-orchid-${i}x`;
        const done = await changePassword(deps(c, { clientAddress: "198.51.100.9" }), form({ current, password: next, confirm: next }));
        assert.ok(done.ok, JSON.stringify(done));
        current = next;
      }
      const tooMany = await changePassword(deps(c, { clientAddress: "198.51.100.9" }), form({ current }));
      assert.match(said(tooMany), /changed your password many times/);
    } finally {
      await c.box.close();
    }
  });

  it("puts the earlier services' credentials back when a later spec cannot be written", async () => {
    const c = await signedUpCustomer();
    try {
      // A second service of the same customer: signed up with the same e-mail is refused, so its row is added by hand.
      const second = await signUp({ db: c.box.db, store: c.box.store, server: c.server, stateDir: c.box.dir, clientAddress: "192.0.2.2" }, { email: "bob@mail.example", password: SIGNUP_PASSWORD, confirm: SIGNUP_PASSWORD, domain: "bob.box.test", plan: "starter" });
      assert.ok(second.ok);
      c.box.db.update(customerServices).set({ userId: c.user.id }).where(eq(customerServices.serviceId, second.serviceId)).run();
      const rows = c.box.db.select().from(customerServices).all().map((r) => r.serviceId).sort();
      assert.deepEqual(rows, ["alice-box-test", "bob-box-test"]);

      const aliceBefore = (await storedHash(c, "mail", `alice@${c.domain}`)) ?? "";
      const failing: Pick<StateStore, "applySpec" | "getSpec" | "readSecret"> = {
        getSpec: (id) => c.box.store.getSpec(id),
        readSecret: (name) => c.box.store.readSecret(name),
        applySpec: (value, options) => {
          if ((value as { id?: string }).id === "bob-box-test") return Promise.reject(new Error("disk full"));
          return c.box.store.applySpec(value, options);
        },
      };
      const result = await changePassword(deps(c, { store: failing }), form());
      assert.match(said(result), /failed while updating bob-box-test: disk full/);
      const aliceAfter = (await storedHash(c, "mail", `alice@${c.domain}`)) ?? "";
      assert.equal(aliceAfter, aliceBefore, "alice's mailbox has its old credential again");
      assert.equal(scramVerifies(aliceAfter, SIGNUP_PASSWORD), true);
      assert.equal(await verifyPassword(SIGNUP_PASSWORD, panelHash(c)), true, "the panel keeps the old password");
    } finally {
      await c.box.close();
    }
  });
});
