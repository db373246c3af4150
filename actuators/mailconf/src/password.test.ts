import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash, createHmac, pbkdf2Sync } from "node:crypto";
import { describe, it } from "node:test";
import { DEFAULT_PASSWORD_SCHEMES, hashPassword, normalizePasswordHash } from "./password.ts";
import { findProgram, IN_CI } from "./test/support.ts";

const SCHEMES = new Set(DEFAULT_PASSWORD_SCHEMES);

describe("normalizePasswordHash", () => {
  it("keeps a hash that has a scheme Dovecot verifies, upper-casing the scheme", () => {
    assert.deepEqual(normalizePasswordHash("{SHA512-CRYPT}$6$abc$def", SCHEMES), { ok: true, hash: "{SHA512-CRYPT}$6$abc$def", scheme: "SHA512-CRYPT" });
    assert.deepEqual(normalizePasswordHash("{argon2id}$argon2id$v=19$x", SCHEMES), { ok: true, hash: "{ARGON2ID}$argon2id$v=19$x", scheme: "ARGON2ID" });
  });

  it("gives PHC and crypt(3) strings without a prefix the matching Dovecot scheme", () => {
    const cases: Array<[string, string]> = [
      ["$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", "ARGON2ID"],
      ["$argon2i$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", "ARGON2I"],
      ["$6$salt$hash", "SHA512-CRYPT"],
      ["$5$salt$hash", "SHA256-CRYPT"],
      ["$2y$05$abcdefghijklmnopqrstuv", "BLF-CRYPT"],
      ["$y$j9T$salt$hash", "CRYPT"],
    ];
    for (const [hash, scheme] of cases) {
      assert.deepEqual(normalizePasswordHash(hash, SCHEMES), { ok: true, hash: `{${scheme}}${hash}`, scheme });
    }
  });

  it("refuses schemes Dovecot cannot verify, clear text, and hashes that would break the passwd-file", () => {
    const refused: Array<[string, RegExp]> = [
      ["$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA", /\$scrypt\$ hash format has no dovecot scheme/],
      ["{SCRAM-SHA-512}4096,abc,def,ghi", /cannot verify the \{SCRAM-SHA-512\} scheme/],
      ["{PLAIN}secret", /clear-text/],
      ["{CLEAR}secret", /clear-text/],
      ["{SHA512-CRYPT}$6$a:b", /colon or whitespace/],
      ["{SHA512-CRYPT}", /empty/],
    ];
    for (const [hash, why] of refused) {
      const result = normalizePasswordHash(hash, SCHEMES);
      assert.ok(!result.ok, hash);
      assert.match(result.why, why);
      const secret = hash.startsWith("{") ? hash.slice(hash.indexOf("}") + 1) : hash;
      if (secret !== "") assert.ok(!result.why.includes(secret), "the reason never echoes the hash");
    }
  });

  it("honours a narrower scheme list (a Dovecot built without libsodium has no ARGON2ID)", () => {
    const result = normalizePasswordHash("$argon2id$v=19$x$y", new Set(["SHA512-CRYPT"]));
    assert.equal(result.ok, false);
  });
});

describe("hashPassword", () => {
  it("makes a SCRAM-SHA-1 hash in Dovecot's format whose keys follow RFC 5802", async () => {
    const hash = await hashPassword("pencil");
    const match = /^\{SCRAM-SHA-1\}(\d+),([A-Za-z0-9+/=]+),([A-Za-z0-9+/=]+),([A-Za-z0-9+/=]+)$/.exec(hash);
    assert.ok(match, hash);
    const [, iterations, salt, storedKey, serverKey] = match;
    assert.equal(iterations, "10000");
    const salted = pbkdf2Sync("pencil", Buffer.from(salt ?? "", "base64"), 10000, 20, "sha1");
    const clientKey = createHmac("sha1", salted).update("Client Key").digest();
    assert.equal(storedKey, createHash("sha1").update(clientKey).digest("base64"));
    assert.equal(serverKey, createHmac("sha1", salted).update("Server Key").digest("base64"));
  });

  it("uses a fresh salt every time", async () => {
    assert.notEqual(await hashPassword("same"), await hashPassword("same"));
  });

  it("refuses fewer SCRAM iterations than RFC 5802 asks for", async () => {
    await assert.rejects(hashPassword("x", { iterations: 100 }), /at least 4096 iterations/);
  });

  const doveadm = findProgram("doveadm");
  const skip = doveadm === undefined && !IN_CI ? "doveadm is missing (Debian package dovecot-core): skipping the checks against Dovecot" : false;
  if (skip !== false) console.error(`\n*** ${skip} ***\n`);

  it("makes hashes that Dovecot verifies (doveadm pw -t), and that a wrong password fails", { skip }, async () => {
    assert.ok(doveadm !== undefined, "doveadm is missing (Debian package dovecot-core)");
    const bin: string = doveadm;
    for (const scheme of ["SCRAM-SHA-1", "SCRAM-SHA-256", "ARGON2ID"] as const) {
      const hash = await hashPassword("correct horse", { scheme });
      assert.ok(hash.startsWith(`{${scheme}}`), hash);
      const good = spawnSync(bin, ["pw", "-t", hash, "-p", "correct horse"], { encoding: "utf8" });
      assert.equal(good.status, 0, `${scheme}: ${good.stdout}${good.stderr}`);
      assert.match(good.stdout, /\(verified\)/);
      const bad = spawnSync(bin, ["pw", "-t", hash, "-p", "wrong horse"], { encoding: "utf8" });
      assert.notEqual(bad.status, 0, `${scheme} must refuse a wrong password`);
    }
  });

  it("normalizes prefix-less crypt(3) strings into hashes that Dovecot verifies", { skip }, () => {
    assert.ok(doveadm !== undefined, "doveadm is missing (Debian package dovecot-core)");
    const bin: string = doveadm;
    for (const scheme of ["SHA512-CRYPT", "BLF-CRYPT"]) {
      const made = spawnSync(bin, ["pw", "-s", scheme, "-p", "s3cret"], { encoding: "utf8" });
      assert.equal(made.status, 0, made.stderr);
      const bare = made.stdout.trim().replace(/^\{[A-Z0-9-]+\}/, "");
      const normalized = normalizePasswordHash(bare, SCHEMES);
      assert.ok(normalized.ok, JSON.stringify(normalized));
      const good = spawnSync(bin, ["pw", "-t", normalized.hash, "-p", "s3cret"], { encoding: "utf8" });
      assert.equal(good.status, 0, `${scheme}: ${good.stdout}${good.stderr}`);
    }
  });
});
