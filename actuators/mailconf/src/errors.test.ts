import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { dkimRecordOf } from "./dkim.ts";
import { MailconfError, type MailconfErrorCode } from "./errors.ts";
import { runProgram } from "./files.ts";

/** Checks that `error` is a MailconfError with `code` and a message matching `message`. */
function isCoded(error: unknown, code: MailconfErrorCode, message: RegExp): true {
  assert.ok(error instanceof MailconfError, "a MailconfError");
  assert.equal(error.code, code);
  assert.match(error.message, message);
  return true;
}

describe("the mail actuator's coded errors", () => {
  it("a DKIM key that is not RSA is MAILCONF_ERR_DKIM_KEY_NOT_RSA", () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    assert.throws(() => dkimRecordOf(pem, "coyote"), (error: unknown) => isCoded(error, "MAILCONF_ERR_DKIM_KEY_NOT_RSA", /the key is ec, not rsa/));
  });

  it("a program ended by its deadline is MAILCONF_ERR_PROGRAM_KILLED", async () => {
    await assert.rejects(runProgram("sleep", ["10"], { timeoutMs: 100 }), (error: unknown) => isCoded(error, "MAILCONF_ERR_PROGRAM_KILLED", /sleep 10 was ended by SIGKILL \(its deadline passed\)/));
  });
});
