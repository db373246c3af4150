import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { eq } from "drizzle-orm";
import { adminExists, createFirstAdmin } from "./activation.ts";
import { openDb } from "./db.ts";
import { hashPassword } from "./passwords.ts";
import { users } from "./schema.ts";
import { sandboxes } from "../test/support.ts";

const box = sandboxes();
const CHEAP = { logN: 10, r: 8, p: 1 };
const admin = (n: number, hash: string) => ({ id: `admin-${n}`, email: `admin${n}@example.org`, passwordHash: hash, createdAt: new Date().toISOString() });

describe("the first admin", () => {
  test("of two activations that both found no admin and then hashed a password, only the first makes one", async () => {
    const b = await box();
    const activate = async (n: number) => {
      if (adminExists(b.db)) return false;
      return createFirstAdmin(b.db, admin(n, await hashPassword(`password ${n}`, CHEAP)));
    };
    const made = await Promise.all([activate(1), activate(2), activate(3)]);
    assert.deepEqual(made.filter(Boolean).length, 1, JSON.stringify(made));
    assert.equal(b.db.select().from(users).where(eq(users.role, "admin")).all().length, 1);
  });

  test("another process's connection cannot make a second admin either", async () => {
    const b = await box();
    const other = openDb(join(b.dir, "crm", "crm.db"));
    try {
      const hash = await hashPassword("password", CHEAP);
      assert.equal(createFirstAdmin(b.db, admin(1, hash)), true);
      assert.equal(createFirstAdmin(other, admin(2, hash)), false);
      // Even with the first admin gone (deleted by hand), the used claim makes no new one.
      b.db.delete(users).run();
      assert.equal(createFirstAdmin(other, admin(3, hash)), false);
    } finally {
      other.$client.close();
    }
  });
});
