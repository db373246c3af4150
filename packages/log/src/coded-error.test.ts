import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { codedErrors } from "./index.ts";

const PLAIN = {
  PLAIN_ERR_MISSING: "a thing is missing",
  PLAIN_ERR_BROKEN: "a thing is broken",
} as const;

const HTTP = {
  HTTP_ERR_UNKNOWN: { message: "no such thing", status: 404 },
  HTTP_ERR_BUSY: { message: "the thing is busy", status: 503 },
} as const;

class PlainError extends codedErrors("PlainError", PLAIN) {}
class HttpError extends codedErrors("HttpError", HTTP) {}

describe("codedErrors", () => {
  test("an error carries its code, its message, its name and its cause", () => {
    const cause = new Error("disk full");
    const error = new PlainError("PLAIN_ERR_BROKEN", "writing thing x: disk full", { cause });
    assert.ok(error instanceof PlainError);
    assert.ok(error instanceof Error);
    assert.equal(error.code, "PLAIN_ERR_BROKEN");
    assert.equal(error.message, "writing thing x: disk full");
    assert.equal(error.name, "PlainError");
    assert.equal(error.cause, cause);
    assert.match(String(error.stack), /^PlainError: writing thing x: disk full\n/);
  });

  test("the message defaults to the catalogue's, and no cause is kept when none was given", () => {
    const error = new PlainError("PLAIN_ERR_MISSING");
    assert.equal(error.message, "a thing is missing");
    assert.equal(Object.hasOwn(error, "cause"), false);
    assert.equal(Object.hasOwn(new PlainError("PLAIN_ERR_MISSING", undefined, { cause: undefined }), "cause"), false);
  });

  test("instanceof tells one catalogue's errors from another's", () => {
    const plain = new PlainError("PLAIN_ERR_MISSING");
    const http = new HttpError("HTTP_ERR_BUSY");
    assert.equal(plain instanceof HttpError, false);
    assert.equal(http instanceof PlainError, false);
  });

  test("the status follows the code where the catalogue gives one", () => {
    assert.equal(new HttpError("HTTP_ERR_UNKNOWN").status, 404);
    assert.equal(new HttpError("HTTP_ERR_BUSY", "waking x: busy").status, 503);
    assert.equal(new PlainError("PLAIN_ERR_BROKEN").status, undefined);
    // The status is not an own field: a log line of the error shows its code, not a copy of the catalogue.
    assert.equal(Object.hasOwn(new HttpError("HTTP_ERR_BUSY"), "status"), false);
  });

  test("a subclass keeps the code and may add its own fields", () => {
    class FieldError extends PlainError {
      readonly field: string;
      constructor(field: string, message: string) {
        super("PLAIN_ERR_BROKEN", `${field}: ${message}`);
        this.name = "FieldError";
        this.field = field;
      }
    }
    const error = new FieldError("name", "too long");
    assert.ok(error instanceof PlainError);
    assert.equal(error.code, "PLAIN_ERR_BROKEN");
    assert.equal(error.name, "FieldError");
    assert.equal(error.message, "name: too long");
  });

  test("the class exposes its catalogue", () => {
    assert.equal(PlainError.catalogue, PLAIN);
  });

  test("a catalogue with a bad code, message or status is refused when its class is made", () => {
    assert.throws(() => codedErrors("Bad", { lower_case: "a message" }), /code lower_case is not UPPER_SNAKE_CASE/);
    assert.throws(() => codedErrors("Bad", { BAD_ERR_X: "A capitalised message" }), /message of BAD_ERR_X must be non-empty lowercase/);
    assert.throws(() => codedErrors("Bad", { BAD_ERR_X: "" }), /message of BAD_ERR_X must be non-empty lowercase/);
    assert.throws(() => codedErrors("Bad", { BAD_ERR_X: { message: "fine", status: 200 } }), /status of BAD_ERR_X must be an HTTP error status/);
  });
});
