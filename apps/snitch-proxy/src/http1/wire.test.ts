// Unit tests of snitch-proxy's HTTP/1.1 wire code (http1/wire.ts): head parsing, body framing,
// the chunked decoder and the writers. The whole proxy's wire behaviour is in h1.test.ts.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { describe, it } from "node:test";
import { ChunkedDecoder, LAST_CHUNK, WireError, chunkHead, fieldLines, parseRequestHead, parseResponseHead, requestFraming, responseFraming, type ResponseHead } from "./wire.ts";

/** Asserts that `run` throws a WireError with this status. */
function refused(run: () => unknown, status: 400 | 431 | 505, what?: string): void {
  assert.throws(
    run,
    (error: unknown) => {
      assert.ok(error instanceof WireError, `${what ?? ""}: a WireError, not ${String(error)}`);
      assert.equal(error.status, status, `${what ?? ""}: status`);
      return true;
    },
    what,
  );
}

/** A request head with these header lines. */
const request = (...lines: string[]) => parseRequestHead(["GET / HTTP/1.1", ...lines].join("\r\n"));

/** A response head with these header lines. */
const response = (statusLine: string, ...lines: string[]): ResponseHead => parseResponseHead([statusLine, ...lines].join("\r\n"));

describe("ChunkedDecoder", () => {
  // Several chunks, upper- and lower-case hex, extensions (a quoted one with a space) and trailers.
  const BODY = Buffer.from(
    [
      "5;ext=1\r\nhello\r\n",
      'A;a="b c"\r\n world, an\r\n',
      "f\r\nd more chunks!!\r\n",
      "1a\r\nabcdefghijklmnopqrstuvwxyz\r\n",
      "1B;x;y=z\r\nABCDEFGHIJKLMNOPQRSTUVWXYZ!\r\n",
      "0;last=yes\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n",
    ].join(""),
    "latin1",
  );
  const DECODED = `hello world, and more chunks!!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!`;
  // What follows the body on the connection: the next message, not the body's.
  const NEXT = Buffer.from("GET /next HTTP/1.1\r\n\r\n", "latin1");
  const WHOLE = Buffer.concat([BODY, NEXT]);

  /** A decoder and what it decoded so far. */
  function decoder(maxTrailerBytes?: number): { decoder: ChunkedDecoder; text: () => string } {
    const pieces: Buffer[] = [];
    const d = new ChunkedDecoder((piece) => pieces.push(Buffer.from(piece)), maxTrailerBytes);
    return { decoder: d, text: () => Buffer.concat(pieces).toString("latin1") };
  }

  it("decodes a body given whole and returns the index just past it, leaving the next message alone", () => {
    const { decoder: d, text } = decoder();
    assert.equal(d.done, false);
    assert.equal(d.push(WHOLE), BODY.length);
    assert.equal(d.done, true);
    assert.equal(text(), DECODED);
  });

  it("returns the input's length for a body given exactly whole", () => {
    const { decoder: d, text } = decoder();
    assert.equal(d.push(BODY), BODY.length);
    assert.equal(d.done, true);
    assert.equal(text(), DECODED);
  });

  it("reads from the start index it is given", () => {
    const prefix = Buffer.from("HTTP/1.1 200 OK\r\n\r\n", "latin1");
    const { decoder: d, text } = decoder();
    assert.equal(d.push(Buffer.concat([prefix, WHOLE]), prefix.length), prefix.length + BODY.length);
    assert.equal(text(), DECODED);
  });

  it("decodes a body fed byte by byte, finishing on the last byte of the body", () => {
    const { decoder: d, text } = decoder();
    for (let i = 0; i < BODY.length; i++) {
      assert.equal(d.done, false, `not done before byte ${String(i)}`);
      assert.equal(d.push(WHOLE.subarray(i, i + 1)), 1, `byte ${String(i)} is the body's`);
    }
    assert.equal(d.done, true);
    assert.equal(text(), DECODED);
    // The next message's bytes are not consumed once the body is over.
    assert.equal(d.push(NEXT), 0);
    assert.equal(d.push(NEXT, 3), 3);
    assert.equal(text(), DECODED);
  });

  it("decodes a body split into two pushes at every position", () => {
    for (let k = 0; k <= WHOLE.length; k++) {
      const { decoder: d, text } = decoder();
      const first = WHOLE.subarray(0, k);
      const second = WHOLE.subarray(k);
      const r1 = d.push(first);
      if (k < BODY.length) {
        assert.equal(r1, k, `split at ${String(k)}: the first push is all body`);
        assert.equal(d.done, false, `split at ${String(k)}: not done after the first push`);
        assert.equal(d.push(second), BODY.length - k, `split at ${String(k)}: the second push ends at the body's end`);
      } else {
        assert.equal(r1, BODY.length, `split at ${String(k)}: the first push ends at the body's end`);
        assert.equal(d.push(second), 0, `split at ${String(k)}: nothing of the second push is the body's`);
      }
      assert.equal(d.done, true, `split at ${String(k)}: done`);
      assert.equal(text(), DECODED, `split at ${String(k)}: the decoded bytes`);
    }
  });

  it("decodes an empty body (only the last chunk) with no trailers", () => {
    const { decoder: d, text } = decoder();
    assert.equal(d.push(Buffer.from("0\r\n\r\nX")), 5);
    assert.equal(d.done, true);
    assert.equal(text(), "");
  });

  it("passes binary data through unchanged, CR and LF bytes included", () => {
    const data = Buffer.from([0, 13, 10, 13, 10, 255, 48, 13]);
    const pieces: Buffer[] = [];
    const binary = new ChunkedDecoder((piece) => pieces.push(Buffer.from(piece)));
    assert.equal(binary.push(Buffer.concat([Buffer.from("8\r\n"), data, Buffer.from("\r\n0\r\n\r\n")])), 18);
    assert.deepEqual(Buffer.concat(pieces), data);
    assert.equal(binary.done, true);
  });

  const MALFORMED: [string, string][] = [
    ["a size that is not hexadecimal", "g\r\nhello\r\n0\r\n\r\n"],
    ["a size with a non-hex digit after hex ones", "5g\r\nhello\r\n0\r\n\r\n"],
    ["an empty size line", "\r\nhello\r\n0\r\n\r\n"],
    ["a size preceded by a space", " 5\r\nhello\r\n0\r\n\r\n"],
    ["a negative size", "-5\r\nhello\r\n0\r\n\r\n"],
    ["a size line ending in a bare LF", "5\nhello\r\n0\r\n\r\n"],
    ["a size line with CR and no LF", "5\rhello\r\n0\r\n\r\n"],
    ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
    ["data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n"],
    ["data followed by CR and no LF", "5\r\nhello\rX0\r\n\r\n"],
    ["data followed by a bare LF", "5\r\nhello\n0\r\n\r\n"],
    ["a size of 13 hex digits", "0000000000001\r\nh\r\n0\r\n\r\n"],
    ["a size of 16 hex digits", "ffffffffffffffff\r\nh\r\n0\r\n\r\n"],
    ["a bare LF in an extension", "5;ext=1\nhello\r\n0\r\n\r\n"],
    ["a NUL in an extension", "5;ext\u0000=1\r\nhello\r\n0\r\n\r\n"],
    ["a trailer line ending in a bare LF", "0\r\nX-T: 1\n\r\n"],
    ["a trailer line with CR and no LF", "0\r\nX-T: 1\rX\r\n\r\n"],
  ];
  for (const [what, input] of MALFORMED) {
    it(`refuses ${what} with a 400, whole and byte by byte`, () => {
      refused(() => decoder().decoder.push(Buffer.from(input, "latin1")), 400, `${what} whole`);
      const { decoder: d } = decoder();
      const bytes = Buffer.from(input, "latin1");
      refused(
        () => {
          for (let i = 0; i < bytes.length; i++) d.push(bytes.subarray(i, i + 1));
        },
        400,
        `${what} byte by byte`,
      );
    });
  }

  it("accepts a size of 12 hex digits (the limit) as far as its data goes", () => {
    const { decoder: d, text } = decoder();
    assert.equal(d.push(Buffer.from("000000000005\r\nhello\r\n0\r\n\r\n")), 26);
    assert.equal(text(), "hello");
  });

  it("refuses an extension longer than 4096 bytes with a 400", () => {
    refused(() => decoder().decoder.push(Buffer.from(`5;${"x".repeat(5000)}\r\nhello\r\n0\r\n\r\n`)), 400);
  });

  it("refuses trailers larger than the limit with a 431", () => {
    refused(() => decoder().decoder.push(Buffer.from(`0\r\nX-Big: ${"a".repeat(17_000)}\r\n\r\n`)), 431, "the default limit");
    refused(() => decoder(64).decoder.push(Buffer.from(`0\r\nX-A: ${"a".repeat(40)}\r\nX-B: ${"b".repeat(40)}\r\n\r\n`)), 431, "a limit of 64 over two lines");
    const { decoder: d } = decoder(64);
    assert.equal(d.push(Buffer.from(`0\r\nX-A: ${"a".repeat(40)}\r\n\r\n`)), 52, "trailers within the limit");
    assert.equal(d.done, true);
  });
});

describe("parseRequestHead", () => {
  it("reads the method, target and version", () => {
    const head = parseRequestHead("GET /path?q=1&r=%20 HTTP/1.1\r\nHost: example.com");
    assert.equal(head.method, "GET");
    assert.equal(head.target, "/path?q=1&r=%20");
    assert.equal(head.minor, 1);
    assert.equal(head.headers.host, "example.com");
    const old = parseRequestHead("POST /x HTTP/1.0");
    assert.equal(old.method, "POST");
    assert.equal(old.minor, 0);
    assert.deepEqual({ ...old.headers }, {});
    assert.equal(parseRequestHead("PROPFIND /dav HTTP/1.1\r\n").method, "PROPFIND");
  });

  it("accepts OPTIONS * and refuses * with another method", () => {
    const head = parseRequestHead("OPTIONS * HTTP/1.1\r\nHost: a");
    assert.equal(head.method, "OPTIONS");
    assert.equal(head.target, "*");
    refused(() => parseRequestHead("GET * HTTP/1.1"), 400);
  });

  it("answers 505 to another HTTP version", () => {
    refused(() => parseRequestHead("GET / HTTP/1.2"), 505, "HTTP/1.2");
    refused(() => parseRequestHead("GET / HTTP/2.0"), 505, "HTTP/2.0");
    refused(() => parseRequestHead("GET / HTTP/0.9\r\nHost: a"), 505, "HTTP/0.9");
  });

  const BAD_LINES: [string, string][] = [
    ["no version", "GET /"],
    ["no version, with headers", "GET /\r\nHost: a"],
    ["only a method", "GET"],
    ["an empty line", ""],
    ["two spaces after the method", "GET  / HTTP/1.1"],
    ["two spaces before the version", "GET /  HTTP/1.1"],
    ["a space at the end", "GET / HTTP/1.1 "],
    ["a space at the start", " GET / HTTP/1.1"],
    ["a space inside the target", "GET /a b HTTP/1.1"],
    ["a tab instead of a space", "GET\t/ HTTP/1.1"],
    ["a lower-case version", "GET / http/1.1"],
    ["a version that is not HTTP", "GET / HTTX/1.1"],
    ["a version of two digits", "GET / HTTP/1.10"],
    ["a method that is not a token", "G(T / HTTP/1.1"],
    ["a control character in the target", "GET /a\u0001b HTTP/1.1"],
    ["a DEL in the target", "GET /a\u007fb HTTP/1.1"],
    ["an absolute-form target", "GET http://example.com/ HTTP/1.1"],
    ["an authority-form target", "CONNECT example.com:443 HTTP/1.1"],
    ["a target not starting with /", "GET index.html HTTP/1.1"],
  ];
  for (const [what, line] of BAD_LINES) {
    it(`refuses a request line with ${what} with a 400`, () => {
      refused(() => parseRequestHead(line), 400, JSON.stringify(line));
    });
  }

  it("lower-cases header names and trims spaces and tabs around values", () => {
    const head = request("Host: a", "X-MiXeD-Case:  \t value with  inner  spaces \t ", "Accept:text/html", "X-Empty:", "X-Blank: \t ");
    assert.deepEqual(
      { ...head.headers },
      { host: "a", "x-mixed-case": "value with  inner  spaces", accept: "text/html", "x-empty": "", "x-blank": "" },
    );
  });

  it("joins repeated fields with a comma, cookies with a semicolon, and keeps Set-Cookie as a list", () => {
    const head = request("Accept: text/html", "X-A: 1", "accept: application/json", "Cookie: a=1", "X-A: 2", "cookie: b=2", "Set-Cookie: s=1; Path=/", "set-cookie: t=2", "X-A: 3");
    assert.equal(head.headers.accept, "text/html, application/json");
    assert.equal(head.headers["x-a"], "1, 2, 3");
    assert.equal(head.headers.cookie, "a=1; b=2");
    assert.deepEqual(head.headers["set-cookie"], ["s=1; Path=/", "t=2"]);
    assert.deepEqual(request("Set-Cookie: only=1").headers["set-cookie"], ["only=1"]);
  });

  it("refuses a repeated Host, even with the same value", () => {
    refused(() => request("Host: a", "Host: b"), 400, "another value");
    refused(() => request("Host: a", "host: a"), 400, "the same value");
  });

  it("accepts a repeated Content-Length with the same value and refuses another value", () => {
    assert.equal(request("Content-Length: 5", "content-length: 5").headers["content-length"], "5");
    refused(() => request("Content-Length: 5", "Content-Length: 6"), 400, "5 then 6");
    refused(() => request("Content-Length: 5", "Content-Length: 05"), 400, "5 then 05");
  });

  const BAD_FIELDS: [string, string[]][] = [
    ["an obs-fold continuation line", ["X-A: 1", " continued"]],
    ["an obs-fold with a tab", ["X-A: 1", "\tcontinued"]],
    ["a space before the colon", ["X-A : 1"]],
    ["a tab before the colon", ["X-A\t: 1"]],
    ["no colon", ["X-A 1"]],
    ["an empty name", [": 1"]],
    ["an empty line inside the head", ["X-A: 1", "", "X-B: 2"]],
    ["a name that is not a token", ["X(A): 1"]],
    ["a control character in a value", ["X-A: a\u0001b"]],
    ["a NUL in a value", ["X-A: a\u0000b"]],
    ["a DEL in a value", ["X-A: a\u007fb"]],
    ["a bare CR in a value", ["X-A: a\rb"]],
    ["a bare LF in a value", ["X-A: a\nb"]],
    ["a bare LF ending a header line", ["X-A: a\nX-B: b"]],
  ];
  for (const [what, lines] of BAD_FIELDS) {
    it(`refuses ${what} with a 400`, () => {
      refused(() => request("Host: a", ...lines), 400, what);
    });
  }

  it("keeps tabs inside a value", () => {
    assert.equal(request("X-A: a\tb").headers["x-a"], "a\tb");
  });

  it("stores headers named like Object.prototype's properties as plain headers", () => {
    const head = request("Constructor: c", "__proto__: p", "toString: t", "hasOwnProperty: h", "constructor: d");
    assert.equal(head.headers.constructor, "c, d");
    assert.equal(head.headers.__proto__, "p");
    assert.equal(head.headers.tostring, "t");
    assert.equal(head.headers.hasownproperty, "h");
    assert.deepEqual(Object.keys(head.headers).sort(), ["__proto__", "constructor", "hasownproperty", "tostring"]);
    // The prototype was not replaced by the __proto__ header.
    assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(head.headers)), null);
  });

  it("finds no absent header on Object.prototype", () => {
    const headers = request("Host: a").headers as Record<string, unknown>;
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "isPrototypeOf"]) {
      assert.equal(headers[name], undefined, name);
      assert.equal(name in headers, false, name);
    }
  });

  it("joins repeated headers named like Object.prototype's properties like any other", () => {
    const head = request("toString: a", "tostring: b", "__proto__: x", "__proto__: y");
    assert.equal(head.headers.tostring, "a, b");
    assert.equal(head.headers.__proto__, "x, y");
  });
});

describe("requestFraming", () => {
  const frame = (headers: IncomingHttpHeaders) => requestFraming(headers);

  it("reads no body without Transfer-Encoding or Content-Length, or with a length of 0", () => {
    assert.deepEqual(frame({}), { kind: "none" });
    assert.deepEqual(frame({ "content-length": "0" }), { kind: "none" });
  });

  it("reads a length of digits", () => {
    assert.deepEqual(frame({ "content-length": "42" }), { kind: "length", length: 42 });
    assert.deepEqual(frame({ "content-length": "007" }), { kind: "length", length: 7 });
    assert.deepEqual(frame({ "content-length": "999999999999999" }), { kind: "length", length: 999_999_999_999_999 });
  });

  it("reads exactly chunked, in any case", () => {
    assert.deepEqual(frame({ "transfer-encoding": "chunked" }), { kind: "chunked" });
    assert.deepEqual(frame({ "transfer-encoding": "Chunked" }), { kind: "chunked" });
    assert.deepEqual(frame(request("Transfer-Encoding: CHUNKED ").headers), { kind: "chunked" });
  });

  it("refuses Transfer-Encoding together with Content-Length", () => {
    refused(() => frame({ "transfer-encoding": "chunked", "content-length": "5" }), 400);
    refused(() => frame(request("Content-Length: 5", "Transfer-Encoding: chunked").headers), 400);
  });

  for (const te of ["gzip", "gzip, chunked", "chunked, chunked", "chunked;q=1", "xchunked", "chunkedx", "identity", ""]) {
    it(`refuses the transfer coding ${JSON.stringify(te)}`, () => {
      refused(() => frame({ "transfer-encoding": te }), 400);
    });
  }

  it("refuses a repeated Transfer-Encoding: chunked", () => {
    refused(() => frame(request("Transfer-Encoding: chunked", "Transfer-Encoding: chunked").headers), 400);
  });

  for (const cl of ["", "abc", "-1", "+5", "1.5", "5 5", "5, 5", "0x10", "1e3", "1234567890123456"]) {
    it(`refuses the Content-Length ${JSON.stringify(cl)}`, () => {
      refused(() => frame({ "content-length": cl }), 400);
    });
  }
});

describe("responseFraming", () => {
  it("reads no body for HEAD, 1xx, 204 and 304, whatever the headers say", () => {
    const withLength = response("HTTP/1.1 200 OK", "Content-Length: 10");
    assert.deepEqual(responseFraming("HEAD", withLength), { kind: "none" });
    assert.equal(withLength.headers["content-length"], "10", "a HEAD answer keeps its length");
    assert.deepEqual(responseFraming("HEAD", response("HTTP/1.1 200 OK", "Transfer-Encoding: chunked")), { kind: "none" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 100 Continue")), { kind: "none" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 103 Early Hints", "Link: </a>")), { kind: "none" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 204 No Content", "Content-Length: 10")), { kind: "none" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 304 Not Modified", "Content-Length: 10")), { kind: "none" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked")), { kind: "none" });
  });

  it("reads chunked when chunked is the last coding, and drops the Content-Length", () => {
    const plain = response("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 10");
    assert.deepEqual(responseFraming("GET", plain), { kind: "chunked" });
    assert.equal(plain.headers["content-length"], undefined);
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked")), { kind: "chunked" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Transfer-Encoding: gzip", "Transfer-Encoding: Chunked")), { kind: "chunked" });
    assert.deepEqual(responseFraming("POST", response("HTTP/1.0 201 Created", "Transfer-Encoding: CHUNKED")), { kind: "chunked" });
  });

  it("reads until the close when chunked is not the last coding, and drops the Content-Length", () => {
    const head = response("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip", "Content-Length: 10");
    assert.deepEqual(responseFraming("GET", head), { kind: "close" });
    assert.equal(head.headers["content-length"], undefined);
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Transfer-Encoding: gzip")), { kind: "close" });
  });

  // The last coding is compared whole: a name that only ends in the letters "chunked" is not chunked.
  it("does not take a coding whose name only ends in chunked for chunked", () => {
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, xchunked")), { kind: "close" });
  });

  it("reads until the close without Transfer-Encoding or Content-Length", () => {
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Content-Type: text/plain")), { kind: "close" });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.0 200 OK")), { kind: "close" });
  });

  it("reads a Content-Length otherwise, 0 included", () => {
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Content-Length: 1234")), { kind: "length", length: 1234 });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 404 Not Found", "Content-Length: 0")), { kind: "length", length: 0 });
    assert.deepEqual(responseFraming("GET", response("HTTP/1.1 200 OK", "Content-Length: 7", "Content-Length: 7")), { kind: "length", length: 7 });
  });

  it("refuses a Content-Length that is not digits", () => {
    refused(() => responseFraming("GET", response("HTTP/1.1 200 OK", "Content-Length: 1x")), 400);
    refused(() => responseFraming("GET", response("HTTP/1.1 200 OK", "Content-Length: -1")), 400);
    refused(() => response("HTTP/1.1 200 OK", "Content-Length: 1", "Content-Length: 2"), 400, "two lengths");
  });
});

describe("parseResponseHead", () => {
  it("reads a status line with a reason", () => {
    const head = response("HTTP/1.1 200 OK", "Content-Type: text/plain", "Set-Cookie: a=1", "Set-Cookie: b=2");
    assert.equal(head.status, 200);
    assert.equal(head.minor, 1);
    assert.equal(head.headers["content-type"], "text/plain");
    assert.deepEqual(head.headers["set-cookie"], ["a=1", "b=2"]);
  });

  it("reads a status line without a reason, HTTP/1.0 included", () => {
    const head = parseResponseHead("HTTP/1.0 404");
    assert.equal(head.status, 404);
    assert.equal(head.minor, 0);
    assert.deepEqual({ ...head.headers }, {});
  });

  it("reads a status line with an empty reason", () => {
    const head = parseResponseHead("HTTP/1.1 200 \r\nContent-Length: 0");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], "0");
  });

  it("reads a reason with spaces", () => {
    assert.equal(parseResponseHead("HTTP/1.1 503 Service Temporarily Unavailable").status, 503);
  });

  const GARBAGE: [string, string][] = [
    ["no status line", "NOT HTTP"],
    ["an empty head", ""],
    ["HTTP/2", "HTTP/2 200 OK"],
    ["HTTP/1.2", "HTTP/1.2 200 OK"],
    ["a lower-case protocol", "http/1.1 200 OK"],
    ["no space after the version", "HTTP/1.1200 OK"],
    ["a two-digit status", "HTTP/1.1 20 OK"],
    ["a four-digit status", "HTTP/1.1 2000 OK"],
    ["a status starting with 0", "HTTP/1.1 099 Odd"],
    ["a status with letters", "HTTP/1.1 2xx OK"],
    ["a tab after the status", "HTTP/1.1 200\tOK"],
    ["no status", "HTTP/1.1 "],
    ["a folded header", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2"],
    ["a space before a colon", "HTTP/1.1 200 OK\r\nX-A : 1"],
    ["a control character in a value", "HTTP/1.1 200 OK\r\nX-A: \u0001"],
  ];
  for (const [what, text] of GARBAGE) {
    it(`refuses ${what} with a WireError`, () => {
      refused(() => parseResponseHead(text), 400, JSON.stringify(text));
    });
  }

  it("says the refusal is about the upstream's answer", () => {
    assert.throws(() => parseResponseHead("NOT HTTP"), /upstream/);
  });
});

describe("fieldLines, chunkHead, LAST_CHUNK", () => {
  it("writes a line per value, several for a list, and skips undefined values", () => {
    assert.equal(
      fieldLines({ host: "a.example", "set-cookie": ["a=1", "b=2"], "x-gone": undefined, "content-length": 5, "x-empty": "" }),
      "host: a.example\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 5\r\nx-empty: \r\n",
    );
    assert.equal(fieldLines({}), "");
    assert.equal(fieldLines({ "x-none": [] }), "");
  });

  it("writes a chunk's size in hexadecimal and the last chunk without trailers", () => {
    assert.equal(chunkHead(1), "1\r\n");
    assert.equal(chunkHead(255), "ff\r\n");
    assert.equal(chunkHead(65_536), "10000\r\n");
    assert.equal(LAST_CHUNK, "0\r\n\r\n");
  });

  it("writes chunks the decoder reads back", () => {
    const pieces: Buffer[] = [];
    const d = new ChunkedDecoder((piece) => pieces.push(Buffer.from(piece)));
    const data = ["x".repeat(300), "y", "z".repeat(17)];
    const wire = `${data.map((one) => `${chunkHead(one.length)}${one}\r\n`).join("")}${LAST_CHUNK}`;
    assert.equal(d.push(Buffer.from(wire)), wire.length);
    assert.equal(Buffer.concat(pieces).toString(), data.join(""));
  });
});
