import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Email } from "@coyote/spec";
import { localPartProblem, normalizeLocalPart, ROLE_LOCAL_PARTS, SYSTEM_LOCAL_PARTS } from "./mail-names.ts";

describe("localPartProblem", () => {
  it("accepts plain names, and every accepted one makes a valid address", () => {
    for (const local of ["alice", "a", "bob.smith", "team-2026", "x_y", "9lives", "a".repeat(64)]) {
      assert.equal(localPartProblem(local, "mailbox"), undefined, local);
      assert.ok(Email.safeParse(`${local}@example.org`).success, local);
    }
  });

  it("normalizes case and surrounding spaces only", () => {
    assert.equal(normalizeLocalPart("  Alice.Smith "), "alice.smith");
    assert.equal(normalizeLocalPart("a b"), "a b");
  });

  it("refuses hostile and malformed local parts, naming what is wrong", () => {
    const cases: Array<[string, RegExp]> = [
      ["", /enter the part of the address before the @/],
      ["a".repeat(65), /at most 64 characters \(this one has 65\)/],
      ["a b", /not a space/],
      ["alice+tag", /not "\+"/],
      ["alice@evil.org", /not @ \(type only the part before it\)/],
      ['"quoted"', /not "\\""/],
      ["a\u0000b", /not the character U\+0000/],
      ["a\nb", /not the character U\+000A/],
      ["caf\u00e9", /not "é"/],
      ["\u0430lice", /not "а"/],
      ["../etc", /not "\/"/],
      ["a/b", /not "\/"/],
      ["a%b", /not "%"/],
      [".alice", /starts and ends with a letter or a digit/],
      ["alice.", /starts and ends with a letter or a digit/],
      ["-alice", /starts and ends with a letter or a digit/],
      ["_x", /starts and ends with a letter or a digit/],
      ["al..ice", /two dots in a row/],
      ["mailer-daemon", /reserved for the mail system/],
      ["root", /reserved for the mail system/],
    ];
    for (const [local, says] of cases) assert.match(localPartProblem(local, "alias") ?? "(accepted)", says, JSON.stringify(local));
  });

  it("keeps role addresses to aliases, and system names from both", () => {
    for (const role of ["postmaster", "abuse", "hostmaster", "webmaster", "admin", "administrator"]) {
      assert.ok(ROLE_LOCAL_PARTS.has(role));
      assert.match(localPartProblem(role, "mailbox") ?? "", /role address: add it as an alias/);
      assert.equal(localPartProblem(role, "alias"), undefined);
    }
    for (const name of SYSTEM_LOCAL_PARTS) {
      assert.match(localPartProblem(name, "alias") ?? "", /reserved/, name);
      assert.match(localPartProblem(name, "mailbox") ?? "", /reserved/, name);
    }
  });
});
