// Hostile values against the renderers of the Postfix maps and Dovecot's passwd-file: a value
// must never add a field or a line. Checked by Dovecot itself (doveadm auth test) and by postmap.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError } from "@coyote/actuator";
import type { MailFragment } from "./fragment.ts";
import { DEFAULT_PASSWORD_SCHEMES, hashPassword, normalizePasswordHash } from "./password.ts";
import { renderDovecotAuthConf } from "./render-dovecot.ts";
import { renderMaps } from "./render.ts";
import { daemonTestsBlocked, doveadmAuth, findProgram, IN_CI, startDovecot, stopPid, tempRoot, writeDovecotConf } from "./test/support.ts";

const USERS = { mailRoot: "/srv/mail", vmailUid: 5000, vmailGid: 5000 };
const SCHEMES = new Set(DEFAULT_PASSWORD_SCHEMES);
// Each would end the hash's field or line in the passwd-file (or its C string, for NUL).
const BREAKERS = ["\n", "\r", ":", "\0", " ", "\t", "\v", "\u2028", "\u00a0"];
// Harmless inside one field, but the shapes that break other formats: kept as they are.
const ODD_BUT_SAFE = ['"', "\\", "'", "--", "]]", "[==[", "$ORIGIN", ";", "%u", "#"];

function fragment(extra: Partial<MailFragment>): MailFragment {
  return { schemaVersion: 1, id: "alpha", domains: ["a.test"], mailboxes: [], aliases: [], ...extra };
}

describe("hostile values in mail maps", () => {
  it("refuses a hash that holds a field or line separator, and keeps odd but harmless characters in one field", () => {
    for (const bad of BREAKERS) {
      const result = normalizePasswordHash(`{SHA512-CRYPT}$6$x${bad}evil`, SCHEMES);
      assert.equal(result.ok, false, JSON.stringify(bad));
    }
    for (const odd of ODD_BUT_SAFE) {
      const hash = `{SHA512-CRYPT}$6$x${odd}y`;
      assert.deepEqual(normalizePasswordHash(hash, SCHEMES), { ok: true, hash, scheme: "SHA512-CRYPT" }, odd);
      const maps = renderMaps([fragment({ mailboxes: [{ address: "alice@a.test", passwordHash: hash }] })], USERS);
      const lines = maps.dovecotUsers.split("\n").filter((line) => line !== "");
      assert.equal(lines.length, 1, odd);
      // user:hash:uid:gid:gecos:home:shell:extra fields (the extra fields may hold colons of their own).
      assert.ok(lines[0]?.startsWith(`alice@a.test:${hash}:5000:5000::/srv/mail/a.test/alice::userdb_mail=`), `${odd}: ${lines[0] ?? ""}`);
    }
  });

  it("refuses a fragment whose value would add a field or line, naming the field but never the hash", () => {
    const cases: Array<Partial<MailFragment>> = [
      ...BREAKERS.map((bad) => ({ mailboxes: [{ address: "alice@a.test", passwordHash: `{PLAIN}x${bad}evil@a.test:{PLAIN}pw` }] })),
      { mailboxes: [{ address: "alice@a.test\nevil@a.test", passwordHash: "{SHA512-CRYPT}$6$x" }] },
      { mailboxes: [{ address: "ali:ce@a.test", passwordHash: "{SHA512-CRYPT}$6$x" }] },
      { aliases: [{ address: "info@a.test", to: ["alice@a.test other@evil.test"] }] },
      { aliases: [{ address: "info@a.test", to: ["alice@a.test\nroot@a.test evil@evil.test"] }] },
      { catchAll: "x@a.test\n@b.test evil@evil.test" },
      { domains: ["a.test OK\nevil.test"] },
    ];
    for (const extra of cases) {
      assert.throws(
        () => renderMaps([fragment(extra)], USERS),
        (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidFragment" && error.terminal && !error.message.includes("evil@a.test:{PLAIN}"),
        JSON.stringify(extra),
      );
    }
  });
});

describe("hostile values against a real Dovecot and postmap", () => {
  const blocked = daemonTestsBlocked(["dovecot", "doveadm", "postmap"]);
  const skip = blocked !== undefined && !IN_CI ? blocked : false;
  let root = "";
  let cleanup = async () => {};
  let pid: number | undefined;

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    ({ dir: root, cleanup } = await tempRoot("coyote-mailconf-hostile-"));
  });
  after(async () => {
    if (pid !== undefined) await stopPid(pid);
    await cleanup();
  });

  it("a hash smuggling a second user never lets that user log in; odd local parts stay one map key", { skip }, async () => {
    const good = await hashPassword("secret", { iterations: 4096 });
    const smuggled = `${good}\nevil@a.test:{PLAIN}pw::::::`;
    const mailboxes = [
      { address: "alice@a.test", passwordHash: good },
      { address: "o'hara@a.test", passwordHash: smuggled },
    ];
    let users: string;
    let virtualMailboxes: string;
    try {
      ({ dovecotUsers: users, virtualMailboxes } = renderMaps([fragment({ mailboxes })], USERS));
    } catch (error) {
      assert.ok(error instanceof ActuatorError && error.reason === "InvalidFragment", String(error));
      ({ dovecotUsers: users, virtualMailboxes } = renderMaps([fragment({ mailboxes: [mailboxes[0] as MailFragment["mailboxes"][number], { address: "o'hara@a.test", passwordHash: good }] })], USERS));
    }
    const usersFile = join(root, "users");
    await writeFile(usersFile, users);
    await mkdir(join(root, "run"), { recursive: true });
    const conf = await writeDovecotConf(root, renderDovecotAuthConf(usersFile));
    pid = await startDovecot(conf, join(root, "run"), join(root, "dovecot.out"));
    const alice = doveadmAuth(conf, "alice@a.test", "secret");
    assert.equal(alice.ok, true, alice.output);
    const ohara = doveadmAuth(conf, "o'hara@a.test", "secret");
    // Dovecot's default auth_username_chars has no apostrophe: it refuses the name before lookup.
    assert.equal(ohara.ok, false, ohara.output);
    const evil = doveadmAuth(conf, "evil@a.test", "pw");
    assert.equal(evil.ok, false, `a smuggled user logged in: ${evil.output}`);

    const map = join(root, "virtual_mailboxes");
    await writeFile(map, virtualMailboxes);
    // postmap needs a main.cf; a minimal one of its own keeps the system's Postfix out of it.
    await writeFile(join(root, "main.cf"), "compatibility_level = 3.6\n");
    const lookup = spawnSync(findProgram("postmap") ?? "postmap", ["-c", root, "-q", "o'hara@a.test", `texthash:${map}`], { encoding: "utf8" });
    assert.equal(lookup.stdout.trim(), "a.test/o'hara/");
  });
});
