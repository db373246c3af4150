import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { REDACTED, SECRET_KEY_PATTERN, redactSecrets } from "./index.ts";

describe("redactSecrets", () => {
  test("catches the usual secret names in any case, and only those", () => {
    for (const key of ["password", "dbPassword", "passphrase", "token", "accessToken", "secret", "clientSecret", "apiKey", "api_key", "API-KEY", "privateKey", "private_key", "authorization", "Proxy-Authorization", "cookie", "set-cookie"]) {
      assert.ok(SECRET_KEY_PATTERN.test(key), key);
    }
    for (const key of ["user", "tokenCount", "secretName", "host", "path", "keys", "author"]) {
      assert.ok(!SECRET_KEY_PATTERN.test(key), key);
    }
  });

  test("redacts at any depth, in arrays too, without touching the caller's objects", () => {
    const input = { a: { b: [{ c: { token: "t" } }] }, headers: { authorization: "Bearer x", host: "h" }, nothing: null, password: undefined };
    const output = redactSecrets(input);
    assert.deepEqual(output, { a: { b: [{ c: { token: REDACTED } }] }, headers: { authorization: REDACTED, host: "h" }, nothing: null, password: undefined });
    assert.equal(input.a.b[0]?.c.token, "t");
    assert.equal(input.headers.authorization, "Bearer x");
  });

  test("returns the same object when there is nothing to redact, so logging does not copy", () => {
    const input = { a: { b: [1, 2, { c: "d" }] }, e: "f" };
    assert.equal(redactSecrets(input), input);
  });

  test("leaves class instances whole and survives cycles", () => {
    const when = new Date(0);
    const map = new Map([["token", "kept-in-map"]]);
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const output = redactSecrets({ when, map, cyclic, secret: { nested: "object" } });
    assert.equal(output.when, when);
    assert.equal(output.map, map);
    assert.equal<unknown>(output.secret, REDACTED);
    assert.equal(output.cyclic.name, "loop");
  });
});
