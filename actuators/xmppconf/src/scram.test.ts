import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { test } from "node:test";
import {
  deriveScram,
  deriveScramSha1,
  formatScram,
  formatScramSha1,
  parseScram,
  parseScramSha1,
  passwordHashScheme,
  saslprep,
  scramHashFor,
  scramSha1Credentials,
  scramSha256Credentials,
} from "./index.ts";
import { requireProgram } from "./test/prosody.ts";

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, i) => byte ^ (b[i] ?? 0)));
}

test("matches the SCRAM-SHA-1 exchange of RFC 5802 section 5", () => {
  // The RFC's example: user "user", password "pencil"; its ClientProof and ServerSignature can
  // only be reproduced from the right StoredKey and ServerKey.
  const credential = deriveScramSha1("pencil", Buffer.from("QSXCR+Q6sek8bf92", "base64"), 4096);
  const authMessage =
    "n=user,r=fyko+d2lbbFgONRv9qkxdawL,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096,c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j";
  const serverSignature = createHmac("sha1", credential.serverKey).update(authMessage).digest("base64");
  assert.equal(serverSignature, "rmF9pqV8S7suAoZWja4dJRkFsKQ=");
  const clientKey = xor(Buffer.from("v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "base64"), createHmac("sha1", credential.storedKey).update(authMessage).digest());
  assert.deepEqual(createHash("sha1").update(clientKey).digest(), credential.storedKey);
});

test("formats credentials as dovecot does, deterministic for a given salt", () => {
  const salt = Buffer.from("QSXCR+Q6sek8bf92", "base64");
  const hash = scramSha1Credentials("pencil", salt);
  assert.match(hash, /^\{SCRAM-SHA-1\}32768,QSXCR\+Q6sek8bf92,[A-Za-z0-9+/]{27}=,[A-Za-z0-9+/]{27}=$/);
  assert.equal(scramSha1Credentials("pencil", salt), hash);
  assert.notEqual(scramSha1Credentials("pencil"), scramSha1Credentials("pencil"), "a random salt by default");
  assert.match(scramSha1Credentials("pencil", salt, 10000), /^\{SCRAM-SHA-1\}10000,/);
  const parsed = parseScramSha1(hash);
  assert.ok(parsed.ok);
  assert.equal(formatScramSha1(parsed.credential), hash);
  assert.throws(() => scramSha1Credentials("pencil", salt, 1000), /iterations must be a whole number from 4096/);
  assert.throws(() => scramSha1Credentials("pencil", Buffer.alloc(0)), /the salt is empty/);
  assert.throws(() => scramSha1Credentials(""), /it is empty/);
});

test("agrees with dovecot both ways (doveadm pw)", (t) => {
  if (!requireProgram(t, "doveadm")) return;
  const ours = scramSha1Credentials("correct horse");
  const verify = spawnSync("doveadm", ["pw", "-t", ours, "-p", "correct horse"], { encoding: "utf8" });
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /\(verified\)/);
  const wrong = spawnSync("doveadm", ["pw", "-t", ours, "-p", "battery staple"], { encoding: "utf8" });
  assert.notEqual(wrong.status, 0);

  const theirs = spawnSync("doveadm", ["pw", "-s", "SCRAM-SHA-1", "-p", "correct horse"], { encoding: "utf8" }).stdout.trim();
  const parsed = parseScramSha1(theirs);
  assert.ok(parsed.ok, theirs);
  assert.equal(scramSha1Credentials("correct horse", parsed.credential.salt, parsed.credential.iterations), theirs);
});

test("refuses other schemes and malformed SCRAM-SHA-1 credentials", () => {
  const good = scramSha1Credentials("pencil", Buffer.from("0123456789abcdef"));
  const [, salt, stored, server] = good.slice("{SCRAM-SHA-1}".length).split(",");
  assert.deepEqual(parseScramSha1("{SHA512-CRYPT}$6$abc$def"), { ok: false, problem: "unsupported-scheme" });
  assert.deepEqual(parseScramSha1("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"), { ok: false, problem: "unsupported-scheme" });
  assert.deepEqual(parseScramSha1("{SCRAM-SHA-256}4096,a,b,c"), { ok: false, problem: "unsupported-scheme" });
  for (const bad of [
    `{SCRAM-SHA-1}4096,${salt},${stored}`,
    `{SCRAM-SHA-1}4096,${salt},${stored},${server},x`,
    `{SCRAM-SHA-1}1000,${salt},${stored},${server}`,
    `{SCRAM-SHA-1}04096,${salt},${stored},${server}`,
    `{SCRAM-SHA-1}99999999,${salt},${stored},${server}`,
    `{SCRAM-SHA-1}4096,,${stored},${server}`,
    `{SCRAM-SHA-1}4096,${salt},${stored}x,${server}`,
    `{SCRAM-SHA-1}4096,${salt},${stored},AAAA`,
    `{SCRAM-SHA-1}4096,${salt},${stored},${(server ?? "").replace(/=$/, "")}`,
  ]) {
    assert.deepEqual(parseScramSha1(bad), { ok: false, problem: "malformed" }, bad);
  }
  assert.equal(passwordHashScheme("{SHA512-CRYPT}$6$x"), "{SHA512-CRYPT}");
  assert.equal(passwordHashScheme("$argon2id$v=19"), "$argon2id$");
  assert.equal(passwordHashScheme("plain"), "(none)");
});

test("prepares passwords with SASLprep", () => {
  assert.equal(saslprep("I\u00ADX"), "IX", "soft hyphen mapped to nothing");
  assert.equal(saslprep("user"), "user");
  assert.equal(saslprep("USER"), "USER", "case is kept");
  assert.equal(saslprep("\u00AA"), "a", "NFKC");
  assert.equal(saslprep("\u2168"), "IX", "NFKC");
  assert.equal(saslprep("a\u00A0b"), "a b", "non-ASCII space mapped to space");
  assert.throws(() => saslprep("\u0007"), /prohibits \(U\+0007\)/);
  assert.throws(() => saslprep("\u00AD"), /it is empty/);
  // Same credential for the prepared and the unprepared form, as a client that applies SASLprep sends it.
  const salt = Buffer.from("salt-salt-salt!!");
  assert.equal(scramSha1Credentials("a\u00A0b", salt), scramSha1Credentials("a b", salt));
});

test("matches the SCRAM-SHA-256 exchange of RFC 7677 section 3", () => {
  const credential = deriveScram("SHA-256", "pencil", Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"), 4096);
  const authMessage =
    "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  assert.equal(createHmac("sha256", credential.serverKey).update(authMessage).digest("base64"), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  const clientKey = xor(Buffer.from("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "base64"), createHmac("sha256", credential.storedKey).update(authMessage).digest());
  assert.deepEqual(createHash("sha256").update(clientKey).digest(), credential.storedKey);
});

test("makes SCRAM-SHA-256 credentials in dovecot's format that dovecot verifies, and reads both schemes", (t) => {
  const salt = Buffer.from("QSXCR+Q6sek8bf92", "base64");
  const hash = scramSha256Credentials("correct horse", salt);
  assert.match(hash, /^\{SCRAM-SHA-256\}16384,QSXCR\+Q6sek8bf92,[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$/);
  const parsed = parseScram(hash);
  assert.ok(parsed.ok);
  assert.equal(parsed.credential.hash, "SHA-256");
  assert.equal(formatScram(parsed.credential), hash);
  assert.deepEqual(parseScramSha1(hash), { ok: false, problem: "unsupported-scheme" }, "a SHA-1 reader never takes a SHA-256 credential");
  const sha1 = parseScram(scramSha1Credentials("correct horse", salt));
  assert.ok(sha1.ok);
  assert.equal(sha1.credential.hash, "SHA-1");
  // Keys of the other hash's length are malformed: a SHA-1 credential relabelled is refused.
  assert.deepEqual(parseScram(scramSha1Credentials("pencil", salt).replace("{SCRAM-SHA-1}", "{SCRAM-SHA-256}")), { ok: false, problem: "malformed" });
  assert.deepEqual(parseScram(hash.replace("{SCRAM-SHA-256}", "{SCRAM-SHA-1}")), { ok: false, problem: "malformed" });
  assert.deepEqual(parseScram("{SCRAM-SHA-512}4096,a,b,c"), { ok: false, problem: "unsupported-scheme" });
  assert.throws(() => scramSha256Credentials("pencil", salt, 4095), /making scram-sha-256 credentials: iterations must be a whole number from 4096/);

  if (!requireProgram(t, "doveadm")) return;
  const ours = scramSha256Credentials("correct horse");
  const verify = spawnSync("doveadm", ["pw", "-t", ours, "-p", "correct horse"], { encoding: "utf8" });
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /\(verified\)/);
  assert.notEqual(spawnSync("doveadm", ["pw", "-t", ours, "-p", "battery staple"], { encoding: "utf8" }).status, 0);
  const theirs = spawnSync("doveadm", ["pw", "-s", "SCRAM-SHA-256", "-p", "correct horse"], { encoding: "utf8" }).stdout.trim();
  const read = parseScram(theirs);
  assert.ok(read.ok, theirs);
  assert.equal(scramSha256Credentials("correct horse", read.credential.salt, read.credential.iterations), theirs);
});

test("a new credential follows the scheme of the service's accounts: SHA-256 for a new one, never a mix", () => {
  const sha1 = scramSha1Credentials("a", Buffer.from("salt"), 4096);
  const sha256 = scramSha256Credentials("a", Buffer.from("salt"), 4096);
  assert.equal(scramHashFor([]), "SHA-256");
  assert.equal(scramHashFor([sha256, sha256]), "SHA-256");
  assert.equal(scramHashFor([sha1, sha1]), "SHA-1");
  assert.throws(() => scramHashFor([sha1, sha256]), /the service's accounts use \{SCRAM-SHA-1\} and \{SCRAM-SHA-256\}, not one scram scheme/);
  assert.throws(() => scramHashFor(["{ARGON2ID}$argon2id$x"]), /use \{ARGON2ID\}/);
});
