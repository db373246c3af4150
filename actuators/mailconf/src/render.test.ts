import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ActuatorError } from "@coyote/actuator";
import type { MailFragment } from "./fragment.ts";
import type { MailActuatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { renderDovecotAuthConf } from "./render-dovecot.ts";
import { MAP_FILES, renderMainCf, renderMaps, renderMasterCf } from "./render.ts";
import { daemonTestsBlocked, findProgram, IN_CI, tempRoot } from "./test/support.ts";

function options(root: string, overrides: Partial<MailActuatorOptions["postfix"]> = {}): MailActuatorOptions {
  return {
    stateDir: join(root, "state"),
    postfix: {
      configDir: join(root, "postfix"),
      queueDirectory: join(root, "queue"),
      dataDirectory: join(root, "data"),
      smtpListen: "127.0.0.1:2525",
      maillogFile: join(root, "maillog"),
      ...overrides,
    },
    dovecot: { usersFile: join(root, "dovecot", "users") },
    mailRoot: join(root, "mail"),
    vmailUid: 5000,
    vmailGid: 5000,
  };
}

const USERS = { mailRoot: "/srv/mail", vmailUid: 5000, vmailGid: 5001 };

function fragment(id: string, domains: string[], extra: Partial<MailFragment> = {}): MailFragment {
  return { schemaVersion: 1, id, domains, mailboxes: [], aliases: [], ...extra };
}

describe("renderMainCf and renderMasterCf", () => {
  it("render the same bytes for the same options, with the settings that make a closed virtual-only MX", () => {
    const opts = options("/srv/coyote");
    const text = renderMainCf(opts, "mx.example.org");
    assert.equal(renderMainCf(opts, "mx.example.org"), text);
    for (const line of [
      "compatibility_level = 3.6",
      "queue_directory = /srv/coyote/queue",
      "data_directory = /srv/coyote/data",
      "myhostname = mx.example.org",
      "mydestination =",
      "smtpd_relay_restrictions = reject_unauth_destination",
      "smtpd_recipient_restrictions = reject_unlisted_recipient, reject_unauth_destination",
      "unknown_virtual_mailbox_reject_code = 550",
      "virtual_mailbox_domains = texthash:/srv/coyote/postfix/virtual_domains",
      "virtual_mailbox_maps = texthash:/srv/coyote/postfix/virtual_mailboxes",
      "virtual_alias_maps = texthash:/srv/coyote/postfix/virtual_aliases",
      "virtual_mailbox_base = /srv/coyote/mail",
      "virtual_uid_maps = static:5000",
      "virtual_gid_maps = static:5000",
      "maillog_file = /srv/coyote/maillog",
    ]) {
      assert.ok(text.split("\n").includes(line), `main.cf has ${line}`);
    }
    assert.doesNotMatch(text, /permit_mynetworks/, "not even localhost may relay");
  });

  it("prefer the configured myhostname over the server's hostname, and leave it to Postfix when neither is known", () => {
    assert.match(renderMainCf(options("/x", { myhostname: "mail.example.net" }), "mx.example.org"), /^myhostname = mail\.example\.net$/m);
    assert.doesNotMatch(renderMainCf(options("/x")), /^myhostname/m);
  });

  it("listen for SMTP only where smtpListen says, with no chroot", () => {
    const text = renderMasterCf(options("/x", { smtpListen: "[::1]:2526" }));
    assert.match(text, /^\[::1\]:2526\s+inet\s+n\s+-\s+n\s+-\s+-\s+smtpd$/m);
    assert.doesNotMatch(text, /^smtp\s+inet/m);
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#"))) {
      assert.equal(line.split(/\s+/)[4], "n", `no chroot: ${line}`);
    }
  });

  it("refuse options that would break the config files, as a terminal InvalidOptions error", () => {
    const bad: MailActuatorOptions[] = [
      options("/x", { smtpListen: "2525" }),
      options("/x", { smtpListen: "127.0.0.1:70000" }),
      options("/x", { configDir: "relative/postfix" }),
      options("/x", { configDir: "/etc/postfix coyote" }),
      { ...options("/x"), vmailUid: 0 },
      { ...options("/x"), mailRoot: "/srv/mail:x" },
      { ...options("/x"), dkimSelector: "Bad_Selector" },
    ];
    for (const opts of bad) {
      assert.throws(() => resolveOptions(opts), (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidOptions" && error.terminal && /^configuring the mail actuator: /.test(error.message));
    }
  });
});

describe("renderMaps", () => {
  const a = fragment("alpha", ["a.test"], {
    mailboxes: [
      { address: "alice@a.test", passwordHash: "{SCRAM-SHA-1}4096,c2FsdA==,a2V5,c2Vydg==" },
      { address: "bob@a.test", passwordHash: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA", quotaMb: 100 },
    ],
    aliases: [{ address: "info@a.test", to: ["alice@a.test", "bob@a.test"] }],
  });
  const b = fragment("beta", ["b.test"], {
    mailboxes: [{ address: "carol@b.test", passwordHash: "{SHA512-CRYPT}$6$salt$hash" }],
    catchAll: "carol@b.test",
  });

  it("combines every fragment into sorted maps, whatever order the fragments come in", () => {
    const maps = renderMaps([a, b], USERS);
    assert.deepEqual(renderMaps([b, a], USERS), maps);
    const entries = (text: string) => text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    assert.deepEqual(entries(maps.virtualDomains), ["a.test OK", "b.test OK"]);
    assert.deepEqual(entries(maps.virtualMailboxes), ["alice@a.test a.test/alice/", "bob@a.test a.test/bob/", "carol@b.test b.test/carol/"]);
    assert.deepEqual(entries(maps.virtualAliases), ["@b.test carol@b.test", "abuse@a.test alice@a.test", "carol@b.test carol@b.test", "info@a.test alice@a.test,bob@a.test", "postmaster@a.test alice@a.test"]);
    assert.deepEqual(maps.owners, { "a.test": "alpha", "b.test": "beta" });
    assert.deepEqual(maps.conflicts, []);
  });

  it("answers postmaster@ and abuse@ of every domain with the service's first mailbox there, unless the spec names them or a catch-all takes them", () => {
    const entries = (f: ReturnType<typeof fragment>[]) => renderMaps(f, USERS).virtualAliases.split("\n").filter((line) => /^(postmaster|abuse)@/.test(line));
    const two = fragment("two", ["one.test", "two.test"], {
      mailboxes: [{ address: "zed@two.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }, { address: "amy@one.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }],
      aliases: [{ address: "postmaster@two.test", to: ["zed@two.test"] }],
    });
    // one.test's own mailbox takes its roles; two.test names its postmaster (kept, not doubled).
    assert.deepEqual(entries([two]), ["abuse@one.test amy@one.test", "abuse@two.test zed@two.test", "postmaster@one.test amy@one.test", "postmaster@two.test zed@two.test"]);
    const bare = fragment("bare", ["bare.test", "other.test"], { mailboxes: [{ address: "ann@bare.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }] });
    assert.deepEqual(entries([bare]), ["abuse@bare.test ann@bare.test", "abuse@other.test ann@bare.test", "postmaster@bare.test ann@bare.test", "postmaster@other.test ann@bare.test"], "a domain without a mailbox of its own: the service's first");
    assert.deepEqual(entries([b]), [], "a catch-all takes them");
    assert.deepEqual(entries([fragment("none", ["none.test"], {})]), [], "no mailbox: no one to send them to");
  });

  it("writes Dovecot's passwd-file with home, Maildir and quota per mailbox", () => {
    const lines = renderMaps([a, b], USERS).dovecotUsers.trimEnd().split("\n");
    assert.deepEqual(lines, [
      "alice@a.test:{SCRAM-SHA-1}4096,c2FsdA==,a2V5,c2Vydg==:5000:5001::/srv/mail/a.test/alice::userdb_mail=maildir:~",
      "bob@a.test:{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA:5000:5001::/srv/mail/a.test/bob::userdb_mail=maildir:~ userdb_quota_rule=*:storage=100M",
      "carol@b.test:{SHA512-CRYPT}$6$salt$hash:5000:5001::/srv/mail/b.test/carol::userdb_mail=maildir:~",
    ]);
  });

  it("gives a domain claimed twice to its previous owner, else to the lowest id, and leaves the other's entries out", () => {
    const intruder = fragment("aaa", ["a.test", "own.test"], { mailboxes: [{ address: "mallory@a.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }] });
    const kept = renderMaps([a, intruder], USERS, { "a.test": "alpha" });
    assert.equal(kept.owners["a.test"], "alpha");
    assert.equal(kept.owners["own.test"], "aaa", "the intruder keeps its uncontested domain");
    assert.deepEqual(kept.conflicts, [{ domain: "a.test", owner: "alpha", loser: "aaa" }]);
    assert.doesNotMatch(kept.virtualMailboxes, /mallory/);
    assert.doesNotMatch(kept.dovecotUsers, /mallory/);
    const fresh = renderMaps([a, intruder], USERS);
    assert.equal(fresh.owners["a.test"], "aaa");
    assert.doesNotMatch(fresh.virtualMailboxes, /alice/);
  });

  it("renders Dovecot auth sections that point at the users file", () => {
    const text = renderDovecotAuthConf("/etc/dovecot/coyote/users");
    assert.match(text, /passdb \{\n {2}driver = passwd-file\n {2}args = \/etc\/dovecot\/coyote\/users\n\}/);
    assert.match(text, /userdb \{\n {2}driver = passwd-file\n {2}args = \/etc\/dovecot\/coyote\/users\n\}/);
  });
});

describe("what we render, checked by Postfix itself", () => {
  const blocked = daemonTestsBlocked(["postfix", "postmap"]);
  const skip = blocked !== undefined && !IN_CI ? blocked : false;
  if (skip !== false) console.error(`\n*** skipping the Postfix checks: ${skip} ***\n`);
  let root = "";
  let cleanup = async () => {};

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    ({ dir: root, cleanup } = await tempRoot("coyote-mailconf-render-"));
  });
  after(async () => {
    await cleanup();
  });

  it("passes `postfix -c DIR check` without warnings, and its maps answer `postmap -q`", { skip }, async () => {
    const opts = options(root);
    const resolved = resolveOptions(opts);
    const configDir = resolved.configDir;
    await mkdir(configDir, { recursive: true });
    await mkdir(resolved.queueDirectory, { recursive: true });
    const maps = renderMaps([fragment("alpha", ["a.test"], {
      mailboxes: [{ address: "alice@a.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }],
      aliases: [{ address: "info@a.test", to: ["alice@a.test"] }],
    })], USERS);
    await writeFile(join(configDir, "main.cf"), renderMainCf(opts, "mx.test.example"));
    await writeFile(join(configDir, "master.cf"), renderMasterCf(opts));
    await writeFile(join(configDir, MAP_FILES.virtualDomains), maps.virtualDomains);
    await writeFile(join(configDir, MAP_FILES.virtualMailboxes), maps.virtualMailboxes);
    await writeFile(join(configDir, MAP_FILES.virtualAliases), maps.virtualAliases);

    const postfix = findProgram("postfix") ?? "postfix";
    const check = spawnSync(postfix, ["-c", configDir, "check"], { encoding: "utf8" });
    const log = await readFile(join(root, "maillog"), "utf8").catch(() => "");
    assert.equal(check.status, 0, `postfix check: ${check.stderr}\n${log}`);
    assert.doesNotMatch(log, /warning|fatal|error/i, log);

    const postmap = findProgram("postmap") ?? "postmap";
    const lookup = (key: string, file: string) => spawnSync(postmap, ["-c", configDir, "-q", key, `texthash:${join(configDir, file)}`], { encoding: "utf8" }).stdout.trim();
    assert.equal(lookup("a.test", MAP_FILES.virtualDomains), "OK");
    assert.equal(lookup("alice@a.test", MAP_FILES.virtualMailboxes), "a.test/alice/");
    assert.equal(lookup("ALICE@A.TEST", MAP_FILES.virtualMailboxes), "a.test/alice/", "lookups fold case, so our lowercase keys match any spelling");
    assert.equal(lookup("info@a.test", MAP_FILES.virtualAliases), "alice@a.test");
  });
});
