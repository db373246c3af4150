import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { passwordProblem } from "./password-policy.ts";
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

  test("the policy names what is wrong", () => {
    assert.match(passwordProblem("short", "a@b.example") ?? "", /at least 10 characters \(this one has 5\)/);
    assert.match(passwordProblem("password123", "a@b.example") ?? "", /most common/);
    assert.match(passwordProblem("aaaaaaaaaaaa", "a@b.example") ?? "", /repeated/);
    assert.match(passwordProblem("alice-rocks-2026", "alice@b.example") ?? "", /e-mail's name/);
    assert.match(passwordProblem("x".repeat(201) + "y", "a@b.example") ?? "", /at most 200/);
    assert.equal(passwordProblem("correct horse battery", "alice@b.example"), undefined);
  });
});
