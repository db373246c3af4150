// Generated HTTP/1.1 messages for the differential fuzz test: well-formed ones, and the same with
// the variations where parsers are known to differ (whitespace, case, repeated and folded fields,
// length and coding variants, chunk-size forms, trailers, line endings, control bytes, versions),
// then a few random byte edits. Each case comes from a Random, so a seed replays it.
import type { Random } from "./random.ts";

/** A line ending: mostly CRLF, sometimes a bare LF or a bare CR. */
function eol(random: Random, p: number): string {
  return random.odd(p) ? random.pick(["\n", "\r", "\r\r\n", "\n\r"]) : "\r\n";
}

/** A decimal length, written as the mutation picks. */
function lengthValue(random: Random, length: number): string {
  if (random.chance(0.1)) return `0${String(length)}`;
  if (!random.odd(0.35)) return String(length);
  return random.pick([
    `0${String(length)}`,
    `000000000000000${String(length)}`,
    `+${String(length)}`,
    `-${String(length)}`,
    `${String(length)}, ${String(length)}`,
    `${String(length)},${String(length + 1)}`,
    ` ${String(length)} `,
    `${String(length)}\t`,
    `${String(length)} ${String(length)}`,
    `0x${length.toString(16)}`,
    `${String(length)}.0`,
    "",
    "99999999999999999999",
    "18446744073709551617",
    `${String(length)}\0`,
    `${String(length)}a`,
  ]);
}

const TRANSFER_CODINGS = ["chunked", "Chunked", "CHUNKED", " chunked", "chunked ", "chunked\t", "gzip, chunked", "chunked, gzip", "gzip", "identity", "chunked,", ",chunked", "chunked, chunked", "x-chunked", "chunkedx", "chunk", "chunked;q=1", "\tchunked", "deflate,chunked", "chunked\0"];

/** A chunk-size line for `size`: case, leading zeros, extensions, and broken forms. */
function chunkSize(random: Random, size: number): string {
  let hex = size.toString(16);
  if (random.chance(0.3)) hex = hex.toUpperCase();
  if (random.chance(0.15)) hex = "0".repeat(1 + random.int(random.odd(0.5) ? 14 : 4)) + hex;
  if (random.odd(0.03)) hex = random.pick(["fffffffffffffffff1", "10000000000000000", "ffffffffffffff", "-1", "0x5", " 5", "5 ", "", "g"]);
  let ext = "";
  if (random.chance(0.25)) {
    ext = random.odd(0.5)
      ? random.pick(["; a = b", ";", ";\t", " ;a", "\t;a", ";a=b c", ";a=\x01", ";a=\x7f", ";a=\xff", ";" + "x".repeat(5000), ';a="b\r\nc"'])
      : random.pick([";a=b", ";a", ';a="b c"', ";a=b;c=d", ';a="\\""', ";name=value;x"]);
  }
  return `${hex}${ext}${eol(random, 0.04)}`;
}

/** A trailer section (after the last chunk), possibly empty. */
function trailers(random: Random): string {
  let out = "";
  const count = random.chance(0.7) ? 0 : 1 + random.int(3);
  for (let i = 0; i < count; i++) {
    out += random.odd(0.5) ? random.pick(["Content-Length: 5", "Transfer-Encoding: chunked", " folded", "no colon", "X : y", "X: a\0b", "X: \x01", ":"]) : random.pick(["X-Trailer: one", "x-sum: 5", "X:", "X-T: \xe9", "Server-Timing: a;dur=1"]);
    out += eol(random, 0.04);
  }
  return `${out}${eol(random, 0.04)}`;
}

/** A chunked body: its chunks and last chunk, sizes that sometimes lie, and trailers. */
function chunkedBody(random: Random): string {
  let out = "";
  const count = random.int(4);
  for (let i = 0; i < count; i++) {
    const data = random.bytes(1 + random.int(random.chance(0.1) ? 300 : 20)).toString("latin1");
    const lie = random.odd(0.05) ? random.pick([-1, 1, 2]) : 0;
    out += chunkSize(random, Math.max(0, data.length + lie)) + data + eol(random, 0.04);
  }
  out += random.odd(0.1) ? random.pick(["000", "0;x=y", "00000000000000000", "0 "]) + eol(random, 0.04) : chunkSize(random, 0);
  return out + trailers(random);
}

/** One header line, mutated: name case, space before the colon, value whitespace, folds, controls. */
function headerLine(random: Random, name: string, value: string): string {
  let n = random.chance(0.5) ? random.mixCase(name) : name;
  if (random.odd(0.02)) n += random.pick([" ", "\t"]);
  if (random.odd(0.01)) n = random.pick([" ", "\t"]) + n;
  if (random.odd(0.01)) n = n.slice(0, 1) + random.pick(["\0", "@", "(", " ", "\x7f", "\xe9", "/"]) + n.slice(1);
  let v = value;
  const ows = ["", " ", "  ", "\t", " \t"];
  v = `${random.chance(0.85) ? " " : random.pick(ows)}${v}${random.chance(0.8) ? "" : random.odd(0.5) ? random.pick(ows) : " "}`;
  if (random.odd(0.02)) v += `${eol(random, 0)}${random.pick([" ", "\t", "  "])}folded`;
  if (random.odd(0.02)) {
    const at = random.int(v.length + 1);
    v = v.slice(0, at) + random.pick(["\0", "\x01", "\x7f", "\x1b", "\t", "\xff", "\x80", "\v", "\f"]) + v.slice(at);
  }
  const colon = random.odd(0.005) ? "" : ":";
  return `${n}${colon}${v}${eol(random, 0.02)}`;
}

const METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "Get", "FOO", "M-SEARCH", "PROPFIND", "TRACE", "GET\0", "G ET", "PURGE", "LINK"];
const TARGETS = ["/", "/", "/a/b?c=d&e", "/index.html", "*", "/%20x", "http://h.example/x", "h.example:443", "/a\x7fb", "/\xe9", "/a#f", "/a b", "/a\tb", "//x", "/?", "/a\0b", "/" + "p".repeat(300), ""];
const VERSIONS = ["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/2.0", "HTTP/1.2", "http/1.1", "HTTP/1.10", "HTTP/11", "HTTP/1", "HTTP/1.1 ", "HTTP/3.0", "HTTP/1.x", "HTTPS/1.1", "HTTP/01.1"];
const FIELDS: readonly (readonly [string, string])[] = [
  ["Host", "example.test"],
  ["User-Agent", "fuzz/1.0 (x; y)"],
  ["Accept", "*/*"],
  ["Accept-Encoding", "gzip, br"],
  ["Cookie", "a=1"],
  ["Cookie", "b=2"],
  ["Connection", "keep-alive"],
  ["Connection", "close"],
  ["Content-Type", "text/plain; charset=utf-8"],
  ["X-Forwarded-For", "192.0.2.1"],
  ["X-Empty", ""],
  ["Cache-Control", "no-cache"],
  ["Via", "1.1 a"],
  ["Accept", "text/html"],
  ["X-Quoted", '"a, b"'],
  ["X-Latin", "caf\xe9"],
  ["Expect", "100-continue"],
  ["123", "digits"],
  ["__proto__", "x"],
  ["Set-Cookie", "s=1"],
  ["Set-Cookie", "t=2"],
];

/** The framing headers and body of a message with a body, or none. */
function framing(random: Random, mode: string): { lines: string[]; body: string } {
  const data = random.bytes(random.int(40)).toString("latin1");
  switch (mode) {
    case "length": {
      const declared = random.odd(0.05) ? data.length + random.pick([-1, 1, 5]) : data.length;
      const lines = [headerLine(random, "Content-Length", lengthValue(random, Math.max(0, declared)))];
      if (random.odd(0.08)) lines.push(headerLine(random, "Content-Length", random.chance(0.5) ? String(declared) : String(declared + 1)));
      return { lines, body: data };
    }
    case "chunked": {
      const lines = [headerLine(random, "Transfer-Encoding", random.odd(0.3) ? random.pick(TRANSFER_CODINGS) : random.pick(["chunked", "Chunked", "CHUNKED"]))];
      if (random.odd(0.05)) lines.push(headerLine(random, "Transfer-Encoding", random.pick(TRANSFER_CODINGS)));
      if (random.odd(0.05)) lines.push(headerLine(random, "Content-Length", String(data.length)));
      return { lines, body: chunkedBody(random) };
    }
    default:
      return { lines: [], body: "" };
  }
}

/** The header section: a few fields in random order, the framing ones among them. */
function fieldSection(random: Random, framingLines: string[]): string {
  const lines = [...framingLines];
  const count = random.int(6);
  const used = new Set<string>();
  for (let i = 0; i < count; i++) {
    const [name, value] = random.pick(FIELDS);
    // A repeated Host or Expect is refused: a well-formed case has one at most.
    if ((name === "Host" || name === "Expect") && used.has(name) && !random.odd(1)) continue;
    used.add(name);
    lines.splice(random.int(lines.length + 1), 0, headerLine(random, name, value));
  }
  if (random.chance(0.01)) for (let i = 0; i < 40; i++) lines.push(headerLine(random, `X-Many-${String(i)}`, String(i)));
  return lines.join("");
}

/** Random byte edits: flip, insert, delete or repeat, at most a few, on a fraction of the cases. */
function edit(random: Random, message: string): string {
  if (!random.odd(0.15)) return message;
  let out = message;
  const edits = 1 + random.int(3);
  for (let i = 0; i < edits && out.length > 0; i++) {
    const at = random.int(out.length);
    const byte = random.chance(0.7) ? random.pick(["\0", "\r", "\n", " ", "\t", ":", ";", "\x7f", "\xff", ",", "0", "a", "\r\n"]) : String.fromCharCode(random.int(256));
    switch (random.int(4)) {
      case 0:
        out = out.slice(0, at) + byte + out.slice(at + 1);
        break;
      case 1:
        out = out.slice(0, at) + byte + out.slice(at);
        break;
      case 2:
        out = out.slice(0, at) + out.slice(at + 1);
        break;
      default:
        out = out.slice(0, at) + out.slice(at, at + 1 + random.int(8)) + out.slice(at);
    }
  }
  return out;
}

/** A case's hostility: two in five are well-formed, one in five mildly odd, two in five fully. */
function hostility(random: Random): number {
  return random.pick([0, 0, 0.3, 1, 1]);
}

/** One request: request line, fields, blank line, body. */
function request(random: Random): string {
  const method = random.odd(0.15) ? random.pick(METHODS) : random.pick(METHODS.slice(0, 10));
  const target = random.odd(0.15) ? random.pick(TARGETS) : random.pick(TARGETS.slice(0, 4));
  const version = random.odd(0.15) ? random.pick(VERSIONS) : random.pick(VERSIONS.slice(0, 4));
  const sp = () => (random.odd(0.03) ? random.pick(["  ", "\t", ""]) : " ");
  const mode = random.pick(["none", "none", "length", "chunked"]);
  const { lines, body } = framing(random, mode);
  const lead = random.odd(0.05) ? random.pick(["\r\n", "\n", "\r\n\r\n", " "]) : random.chance(0.02) ? "\r\n" : "";
  return `${lead}${method}${sp()}${target}${sp()}${version}${eol(random, 0.03)}${fieldSection(random, lines)}${eol(random, 0.03)}${body}`;
}

/** A stream of one to three pipelined requests, as latin1 bytes. */
export function requestCase(random: Random): Buffer {
  random.hostility = hostility(random);
  const count = random.chance(0.6) ? 1 : 2 + random.int(2);
  let out = "";
  for (let i = 0; i < count; i++) out += request(random);
  return Buffer.from(edit(random, out), "latin1");
}

const STATUSES = [200, 200, 200, 201, 204, 206, 301, 304, 400, 404, 500, 503, 100, 102, 103, 199, 599, 600, 999, 101, 0, 99];
const STATUS_TEXT = ["HTTP/1.1 ", "HTTP/1.1 ", "HTTP/1.1 ", "HTTP/1.0 ", "HTTP/1.2 ", "HTTP/2 ", "HTTP/2.0 ", "http/1.1 ", "HTTP/1.1  ", "HTTP/1.1\t", "HTTP/1.1", "ICE/1.1 ", "RTSP/1.0 "];

/** A status line: version, code (sometimes not three digits) and reason phrase. */
function statusLine(random: Random, status: number): string {
  const version = random.odd(0.1) ? random.pick(STATUS_TEXT) : random.pick(STATUS_TEXT.slice(0, 4));
  let code = String(status).padStart(3, "0");
  if (random.odd(0.02)) code = random.pick(["20", "2000", "2a0", " 200", "-20"]);
  const text = random.odd(0.1) ? random.pick(["\0", " a\x01b", " a\x7f", "x", "\t"]) : random.pick([" OK", " Not Found", "", " ", " Weird \xe9 reason", " a\tb"]);
  return `${version}${code}${text}${eol(random, 0.03)}`;
}

/** An upstream's answer: interim answers, then the final one with a body framed one of four ways. */
export function responseCase(random: Random): { input: Buffer; method: string } {
  random.hostility = hostility(random);
  const method = random.chance(0.15) ? "HEAD" : "GET";
  let out = "";
  if (random.chance(0.1)) out += `${statusLine(random, random.pick([100, 102, 103]))}${random.chance(0.5) ? headerLine(random, "Link", "</a.css>; rel=preload") : ""}${eol(random, 0.03)}`;
  const status = random.odd(0.2) ? random.pick(STATUSES) : random.pick(STATUSES.slice(0, 12));
  const mode = random.pick(["length", "length", "chunked", "close", "none"]);
  const { lines, body } = mode === "close" ? { lines: [], body: random.bytes(random.int(30)).toString("latin1") } : framing(random, mode);
  // A coding other than chunked on a response means the body runs until the close.
  const extra = random.odd(0.1) ? [headerLine(random, "Transfer-Encoding", random.pick(["gzip", "identity", "gzip, chunked", "chunked, gzip"]))] : [];
  const lead = random.odd(0.03) ? random.pick(["\r\n", "\n"]) : "";
  out = `${lead}${out}${statusLine(random, status)}${fieldSection(random, [...lines, ...extra])}${eol(random, 0.03)}${body}`;
  if (random.chance(0.1)) out += "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  return { input: Buffer.from(edit(random, out), "latin1"), method };
}
