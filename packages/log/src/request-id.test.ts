import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { REQUEST_ID_HEADER, isRequestId, newRequestId, requestIdFrom } from "./index.ts";

describe("request ids", () => {
  test("new ids are 16 URL-safe characters and unique over 10,000", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = newRequestId();
      assert.match(id, /^[A-Za-z0-9_-]{16}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 10_000);
  });

  test("the header is x-request-id", () => {
    assert.equal(REQUEST_ID_HEADER, "x-request-id");
  });

  test("a well-formed incoming id is reused, whatever the header's case", () => {
    assert.equal(requestIdFrom({ "x-request-id": "abcDEF12_-" }), "abcDEF12_-");
    assert.equal(requestIdFrom({ "X-Request-Id": "from-a-buddy-1234" }), "from-a-buddy-1234");
    const longest = "a".repeat(64);
    assert.equal(requestIdFrom({ "x-request-id": longest }), longest);
    assert.equal(requestIdFrom({ "x-request-id": ["first-id-123", "second-id-456"] }), "first-id-123");
  });

  test("a missing or malformed id is replaced by a new one, never trusted", () => {
    const malformed = [
      undefined,
      "",
      "short",
      "has space in it",
      "line\nbreak-injected",
      "trailing-newline-ok?\n",
      "a".repeat(65),
      "x".repeat(500),
      "semi;colon;12",
      "ünicode-abcdef",
      "\u001b[31mred-alert",
    ];
    for (const bad of malformed) {
      const id = requestIdFrom({ "x-request-id": bad, host: "example.org" });
      assert.notEqual(id, bad);
      assert.match(id, /^[A-Za-z0-9_-]{16}$/, `for ${JSON.stringify(bad)}`);
    }
    assert.match(requestIdFrom({}), /^[A-Za-z0-9_-]{16}$/);
    assert.match(requestIdFrom({ "x-request-id": [] }), /^[A-Za-z0-9_-]{16}$/);
    // Node joins a repeated unknown header with ", ", which must not pass either.
    assert.notEqual(requestIdFrom({ "x-request-id": "aaaaaaaa, bbbbbbbb" }), "aaaaaaaa, bbbbbbbb");
  });

  test("isRequestId checks 8 to 64 characters of A-Z a-z 0-9 _ -", () => {
    assert.equal(isRequestId("abcdefgh"), true);
    assert.equal(isRequestId("abcdefg"), false);
    assert.equal(isRequestId(12345678), false);
  });
});
