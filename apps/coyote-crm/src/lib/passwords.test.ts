import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { dummyHash, hashPassword, needsRehash, SCRYPT_DEFAULT, scryptParams, setScryptParams, verifyPassword } from "./passwords.ts";

// Cheap parameters keep the tests fast; one test checks the production default once.
const CHEAP = { logN: 10, r: 8, p: 1 };

describe("passwords", () => {
  test("production hashes use OWASP's scrypt parameters (N = 2^17, r = 8, p = 1) and store them", async () => {
    assert.deepEqual(SCRYPT_DEFAULT, { logN: 17, r: 8, p: 1 });
    assert.deepEqual(scryptParams(), SCRYPT_DEFAULT, "nothing lowered them in this process");
    const hash = await hashPassword("long enough password");
    assert.match(hash, /^\$scrypt\$ln=17,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.equal(await verifyPassword("long enough password", hash), true);
    assert.equal(needsRehash(hash), false);
  });

  test("scrypt hashes verify their password only, and two hashes of one password differ", async () => {
    const hash = await hashPassword("long enough password", CHEAP);
    assert.match(hash, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.equal(await verifyPassword("long enough password", hash), true);
    assert.equal(await verifyPassword("long enough passwore", hash), false);
    assert.notEqual(await hashPassword("long enough password", CHEAP), hash);
  });

  test("a hash made with weaker parameters than the current ones asks to be redone", async () => {
    const old = await hashPassword("pw", { logN: 15, r: 8, p: 1 });
    assert.equal(await verifyPassword("pw", old), true, "older hashes still verify");
    assert.equal(needsRehash(old), true);
    assert.equal(needsRehash(old, { logN: 15, r: 8, p: 1 }), false);
    assert.equal(needsRehash("$scrypt$garbage"), true);
  });

  test("the parameters can be lowered for tests only within what verification accepts", () => {
    assert.throws(() => setScryptParams({ logN: 4, r: 8, p: 1 }), /out of range/);
    assert.deepEqual(scryptParams(), SCRYPT_DEFAULT);
  });

  test("a malformed or dummy hash never verifies", async () => {
    for (const bad of ["", "plain", "$scrypt$ln=15,r=8,p=1$abc", "$scrypt$ln=40,r=8,p=1$AAAA$AAAA", dummyHash(CHEAP)]) assert.equal(await verifyPassword("x", bad), false, bad);
    assert.match(dummyHash(), /^\$scrypt\$ln=17,r=8,p=1\$/, "an unknown e-mail costs what a known one does");
  });
});
