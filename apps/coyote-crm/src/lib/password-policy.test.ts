import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COMMON_PASSWORDS, MAX_PASSWORD_LENGTH, passwordProblem } from "./password-policy.ts";

describe("passwordProblem", () => {
  it("accepts a long, uncommon password", () => {
    assert.equal(passwordProblem("correct horse battery", "alice@example.org"), undefined);
    assert.equal(passwordProblem("x".repeat(9) + "y", "alice@example.org"), undefined);
  });

  it("says what is wrong with a weak password", () => {
    assert.equal(passwordProblem("", "alice@example.org"), "enter a password");
    assert.equal(passwordProblem("abc", "alice@example.org"), "choose a stronger password: use at least 10 characters (this one has 3)");
    assert.equal(passwordProblem("a".repeat(MAX_PASSWORD_LENGTH + 1), "alice@example.org"), "choose a shorter password: at most 200 characters");
    assert.equal(passwordProblem("QwertyUiop", "alice@example.org"), "choose a stronger password: this one is among the most common passwords, which attackers try first");
    assert.equal(passwordProblem("zzzzzzzzzzzz", "alice@example.org"), "choose a stronger password: it repeats a single character");
    assert.equal(passwordProblem("I am ALICE forever", "Alice@example.org"), "choose a stronger password: it must not contain the name of your e-mail address (alice)");
  });

  it("accepts the longest allowed password", () => {
    assert.equal(passwordProblem("ab".repeat(MAX_PASSWORD_LENGTH / 2), "alice@example.org"), undefined);
  });

  it("ignores a local part too short to matter", () => {
    assert.equal(passwordProblem("a long passphrase here", "al@example.org"), undefined);
  });

  it("lists at least 20 common passwords, all in lowercase", () => {
    assert.ok(COMMON_PASSWORDS.size >= 20);
    for (const p of COMMON_PASSWORDS) assert.equal(p, p.toLowerCase());
  });
});
