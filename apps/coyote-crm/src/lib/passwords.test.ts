import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DUMMY_HASH, hashPassword, verifyPassword } from "./passwords.ts";

describe("passwords", () => {
  test("scrypt hashes verify their password only, and two hashes of one password differ", async () => {
    const hash = await hashPassword("long enough password");
    assert.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.equal(await verifyPassword("long enough password", hash), true);
    assert.equal(await verifyPassword("long enough passwore", hash), false);
    assert.notEqual(await hashPassword("long enough password"), hash);
  });

  test("a malformed or dummy hash never verifies", async () => {
    for (const bad of ["", "plain", "$scrypt$ln=15,r=8,p=1$abc", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA", DUMMY_HASH]) assert.equal(await verifyPassword("x", bad), false, bad);
  });
});
