// What the differential fuzz against llhttp found in http1/wire.ts, each kept as a unit test: heads
// and bodies that snitch-proxy read one way and llhttp (or another RFC reader) another.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkedDecoder, WireError, parseRequestHead, parseResponseHead, requestFraming, responseFraming } from "../wire.ts";

/** Asserts that `run` throws a WireError with status 400 whose message matches `why`. */
function refused(run: () => unknown, why: RegExp): void {
  assert.throws(run, (error: unknown) => error instanceof WireError && error.status === 400 && why.test(error.message));
}

/** Decodes `body` whole and byte by byte; returns the decoded text (the same both ways). */
function decode(body: string): string {
  let whole = "";
  const decoder = new ChunkedDecoder((piece) => (whole += piece.toString("latin1")));
  decoder.push(Buffer.from(body, "latin1"));
  assert.equal(decoder.done, true, "the body ends");
  let bytewise = "";
  const slow = new ChunkedDecoder((piece) => (bytewise += piece.toString("latin1")));
  for (const byte of Buffer.from(body, "latin1")) slow.push(Buffer.from([byte]));
  assert.equal(bytewise, whole);
  return whole;
}

/** Asserts that `body` is refused whole and byte by byte. */
function bodyRefused(body: string, why: RegExp): void {
  refused(() => new ChunkedDecoder(() => undefined).push(Buffer.from(body, "latin1")), why);
  const slow = new ChunkedDecoder(() => undefined);
  refused(() => {
    for (const byte of Buffer.from(body, "latin1")) slow.push(Buffer.from([byte]));
  }, why);
}

describe("trailer lines", () => {
  // They were read past as any bytes up to CRLF: llhttp refuses these, and a peer that merges
  // trailers could take a folded or nameless line for part of the field before it.
  it("refuses a trailer line that is not name: value", () => {
    bodyRefused("0\r\n folded\r\n\r\n", /folded trailer line/);
    bodyRefused("0\r\nX-T: 1\r\n\tfolded\r\n\r\n", /folded trailer line/);
    bodyRefused("0\r\nno colon\r\n\r\n", /malformed trailer line/);
    bodyRefused("0\r\nX-T\r\n\r\n", /without a name and a colon/);
    bodyRefused("0\r\n: value\r\n\r\n", /malformed trailer line/);
    bodyRefused("0\r\nX T: 1\r\n\r\n", /malformed trailer line/);
    bodyRefused("0\r\nX-T: a\x01b\r\n\r\n", /control character/);
    bodyRefused("0\r\nX-T: a\x7f\r\n\r\n", /control character/);
  });

  it("reads field lines as trailers: tabs, obs-text and empty values", () => {
    assert.equal(decode("2\r\nhi\r\n0\r\nX-T: a\tb \xe9\r\nX-Empty:\r\nX-Sum:1\r\n\r\n"), "hi");
  });
});

describe("Transfer-Encoding ending in a tab", () => {
  // RFC 9110 trims it; llhttp does not, and takes "chunked<TAB>" for an unknown coding: a body
  // delimited by chunks here was delimited by the close there.
  it("is refused in a request and in a response", () => {
    refused(() => parseRequestHead("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\t"), /ends in a tab/);
    refused(() => parseRequestHead("POST / HTTP/1.1\r\nTransfer-Encoding: chunked \t "), /ends in a tab/);
    refused(() => parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\nX: y"), /ends in a tab/);
  });

  it("is chunked with trailing spaces, and a tab elsewhere is harmless", () => {
    assert.deepEqual(requestFraming(parseRequestHead("POST / HTTP/1.1\r\nTransfer-Encoding:\tchunked  ").headers), { kind: "chunked" });
    assert.equal(parseRequestHead("GET / HTTP/1.1\r\nX-T: a\t").headers["x-t"], "a");
  });
});

describe("response Transfer-Encoding whitespace", () => {
  // String.trim also strips a no-break space (0xA0 in latin1): "gzip,<NBSP>chunked" was chunked
  // here and an unknown last coding (a body until the close) to llhttp.
  it("takes only SP and HTAB for whitespace around the last coding", () => {
    assert.deepEqual(responseFraming("GET", parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,\xa0chunked")), { kind: "close" });
    assert.deepEqual(responseFraming("GET", parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, \tchunked ")), { kind: "chunked" });
  });
});

describe("the status line's reason phrase", () => {
  // A bare CR in it ended the line for llhttp (and hid the field after it); other control
  // characters have no place in it either (RFC 9112 §4).
  it("refuses a control character, a bare CR above all", () => {
    refused(() => parseResponseHead("HTTP/1.1 200 OK\rTransfer-Encoding: chunked\r\nContent-Length: 5"), /control character in the status line/);
    refused(() => parseResponseHead("HTTP/1.1 200 O\x00K"), /control character/);
    refused(() => parseResponseHead("HTTP/1.1 404 Not\x7fFound"), /control character/);
  });

  it("reads a reason with tabs, spaces and obs-text", () => {
    assert.equal(parseResponseHead("HTTP/1.1 200 a\tb  caf\xe9").status, 200);
  });
});

describe("an upstream's Content-Length where it frames nothing", () => {
  // It was checked only where it framed the body; on a HEAD answer, a 204, a 304 or next to a
  // coding, a malformed one was passed on to the client, and llhttp refuses it everywhere.
  it("is refused when it is not digits", () => {
    refused(() => responseFraming("HEAD", parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: +3")), /not a number/);
    refused(() => responseFraming("GET", parseResponseHead("HTTP/1.1 304 Not Modified\r\nContent-Length: 99999999999999999999")), /not a number/);
    refused(() => responseFraming("GET", parseResponseHead("HTTP/1.1 204 No Content\r\nContent-Length: ")), /not a number/);
    refused(() => responseFraming("GET", parseResponseHead("HTTP/1.1 100 Continue\r\nContent-Length: 1x")), /not a number/);
    refused(() => responseFraming("GET", parseResponseHead("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: -1")), /not a number/);
  });

  it("is kept when it is digits", () => {
    const head = parseResponseHead("HTTP/1.1 200 OK\r\nContent-Length: 10");
    assert.deepEqual(responseFraming("HEAD", head), { kind: "none" });
    assert.equal(head.headers["content-length"], "10");
  });
});
