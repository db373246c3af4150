// One example of each category of categories.ts, parsed by both parsers: each category is met
// where it says, and an input just outside it is not taken for it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CATEGORIES } from "./categories.ts";
import { Random } from "./random.ts";
import { escapeBytes, judge, type FuzzKind } from "./run.ts";

/** [category, parser, input, the request's method for an answer]. */
const EXAMPLES: readonly (readonly [string, FuzzKind, string, string?])[] = [
  ["request-line-form", "request", "GET  / HTTP/1.1\r\n\r\n"],
  ["request-line-form", "request", "GET /HTTP/1.1\r\n\r\n"],
  ["request-line-form", "request", "GET /HTTP/1.1\n\r\n"],
  ["http-version", "request", "GET / HTTP/2.0\r\n\r\n"],
  ["target-form", "request", "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"],
  ["bare-empty-line-before-request", "request", "\nGET / HTTP/1.1\r\n\r\n"],
  ["expectation", "request", "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nExpect: 100-continue\r\n\r\n"],
  ["repeated-host", "request", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n"],
  ["content-length-digits", "request", "POST / HTTP/1.1\r\nContent-Length: 0000000000000002\r\n\r\nhi"],
  ["chunk-size-digits", "request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0000000000002\r\nhi\r\n0\r\n\r\n"],
  ["chunk-extension-length", "request", `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;${"x".repeat(5000)}\r\nhi\r\n0\r\n\r\n`],
  ["request-transfer-coding", "request", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
  ["transfer-encoding-tab", "request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
  ["transfer-encoding-tab", "response", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", "GET"],
  ["status-line-form", "response", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET"],
  ["status-code-range", "response", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", "GET"],
  ["reason-control-character", "response", "HTTP/1.1 200 O\x01K\r\nContent-Length: 0\r\n\r\n", "GET"],
  ["switching-protocols", "response", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "GET"],
  ["after-connection-close", "request", "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n"],
  ["after-connection-close", "response", "HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "GET"],
  ["method-token", "request", "BREW / HTTP/1.1\r\n\r\n"],
  ["target-obs-text", "request", "GET /caf\xe9 HTTP/1.1\r\n\r\n"],
  ["chunk-extension-grammar", "request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2; a = b\r\nhi\r\n0\r\n\r\n"],
  ["identical-content-lengths", "request", "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"],
  ["identical-content-lengths", "response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", "GET"],
  ["framing-field-in-trailers", "request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nContent-Length: 5\r\n\r\n"],
  ["response-length-and-coding", "response", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "GET"],
];

/** Inputs both parsers read alike, each next to a category it must not fall in. */
const AGREED: readonly (readonly [FuzzKind, string, string?])[] = [
  ["request", "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"],
  ["request", "\r\nGET / HTTP/1.1\r\n\r\n"],
  ["request", "OPTIONS * HTTP/1.1\r\n\r\n"],
  ["request", "POST / HTTP/1.1\r\nContent-Length: 000000000000002\r\n\r\nhi"],
  ["request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n000000000002;a=b\r\nhi\r\n0\r\nX-T: 1\r\n\r\n"],
  ["request", "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"],
  ["request", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n"],
  ["response", "HTTP/1.1 200 a\tb \xe9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "GET"],
  ["response", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", "GET"],
  ["response", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "HEAD"],
  ["response", "HTTP/1.1 200 OK\r\n\r\nuntil the close", "GET"],
];

describe("the categories of disagreement with llhttp", () => {
  for (const [name, kind, input, method] of EXAMPLES) {
    it(`meets ${name} in ${JSON.stringify(input.slice(0, 60))}`, () => {
      const result = judge(kind, Buffer.from(input, "latin1"), method ?? "GET", new Random(1));
      assert.equal(result.category, name, result.problem ?? `"${escapeBytes(result.input)}"`);
    });
  }

  it("has an example for every category", () => {
    for (const category of CATEGORIES) assert.ok(EXAMPLES.some(([name]) => name === category.name), category.name);
  });

  for (const [kind, input, method] of AGREED) {
    it(`finds both parsers alike on ${JSON.stringify(input.slice(0, 60))}`, () => {
      const result = judge(kind, Buffer.from(input, "latin1"), method ?? "GET", new Random(1));
      assert.equal(result.category, "agree", result.problem);
    });
  }
});
