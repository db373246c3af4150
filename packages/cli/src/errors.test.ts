import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { CoyoteError } from "@coyote/spec";
import { CliError, EXIT, exitCodeFor } from "./errors.ts";

describe("CliError", () => {
  test("keeps the exit code it was given and takes the code that goes with it", () => {
    const cause = new Error("ENOENT");
    const error = new CliError("spec get: no spec \"x\"", EXIT.NOT_FOUND, { cause });
    assert.equal(error.exitCode, EXIT.NOT_FOUND);
    assert.equal(error.code, "CLI_ERR_NOT_FOUND");
    assert.equal(error.name, "CliError");
    assert.equal(error.message, "spec get: no spec \"x\"");
    assert.equal(error.cause, cause);
    assert.equal(exitCodeFor(error), EXIT.NOT_FOUND);
  });

  test("fails with exit 1 unless told otherwise", () => {
    const error = new CliError("up: the build failed");
    assert.equal(error.exitCode, EXIT.FAILED);
    assert.equal(error.code, "CLI_ERR_FAILED");
  });

  test("every exit code of a failure has its own code", () => {
    const codes = [EXIT.FAILED, EXIT.USAGE, EXIT.INVALID, EXIT.NOT_FOUND, EXIT.BUSY, EXIT.MISSING].map((exit) => new CliError("x", exit).code);
    assert.equal(new Set(codes).size, codes.length);
  });

  test("the state store's errors choose their exit code by their code", () => {
    assert.equal(exitCodeFor(new CoyoteError("STORE_ERR_LOCKED", "applying: locked")), EXIT.BUSY);
    assert.equal(exitCodeFor(new CoyoteError("SPEC_ERR_INVALID", "a.json: bad")), EXIT.INVALID);
    assert.equal(exitCodeFor(new Error("boom")), EXIT.FAILED);
  });
});
