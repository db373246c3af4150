import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ActuatorError } from "@coyote/actuator";
import type { MailActuatorOptions } from "./options.ts";
import { renderDovecotConf } from "./render-dovecot.ts";
import { renderMainCf, renderMaps, renderMasterCf } from "./render.ts";
import { findProgram, IN_CI, tempRoot } from "./test/support.ts";

function options(root: string, extra: { postfix?: Partial<MailActuatorOptions["postfix"]>; dovecot?: Partial<MailActuatorOptions["dovecot"]> } = {}): MailActuatorOptions {
  return {
    stateDir: join(root, "state"),
    postfix: {
      configDir: join(root, "postfix"),
      queueDirectory: join(root, "queue"),
      dataDirectory: join(root, "data"),
      smtpListen: "127.0.0.1:2525",
      submissionListen: "127.0.0.1:2587",
      submissionsListen: "[::1]:2465",
      ...extra.postfix,
    },
    dovecot: { usersFile: join(root, "users", "passwd"), imapListen: "127.0.0.1:2143", imapsListen: "[::1]:2993", ...extra.dovecot },
    mailRoot: join(root, "vmail"),
    vmailUid: 5000,
    vmailGid: 5001,
  };
}

const lines = (text: string) => text.split("\n");
const isInvalid = (error: unknown) => error instanceof ActuatorError && error.reason === "InvalidOptions" && error.terminal;

describe("renderDovecotConf", () => {
  it("renders IMAP over TLS only, on the Maildirs and users of the actuator, with the certificate snickers issues for the mail hostname", () => {
    const text = renderDovecotConf(options("/srv/c"), "mx.example.org");
    assert.equal(renderDovecotConf(options("/srv/c"), "mx.example.org"), text, "deterministic");
    for (const line of [
      "base_dir = /srv/c/state/mail/dovecot/run",
      "state_dir = /srv/c/state/mail/dovecot/state",
      "protocols = imap",
      "mail_location = maildir:~",
      "first_valid_uid = 5000",
      "last_valid_uid = 5000",
      "first_valid_gid = 5001",
      "ssl = required",
      "ssl_cert = </srv/c/state/proxy/certs/mx.example.org.pem",
      "ssl_key = </srv/c/state/proxy/certs/mx.example.org.pem",
      "ssl_min_protocol = TLSv1.2",
      "disable_plaintext_auth = yes",
      "  args = /srv/c/users/passwd",
      "    address = 127.0.0.1",
      "    port = 2143",
      "    address = ::1",
      "    port = 2993",
      "    ssl = yes",
      "  unix_listener auth-postfix {",
      "    user = postfix",
    ]) assert.ok(lines(text).includes(line), `dovecot.conf has ${JSON.stringify(line)}`);
    assert.doesNotMatch(text, /^[^#]*(pop3|lmtp|submission)/m, "no other protocol");
  });

  it("turns a listener the options do not name off, and uses the certificate the options give", () => {
    const text = renderDovecotConf({ ...options("/srv/c", { dovecot: { imapListen: undefined } }), tlsChainFile: "/etc/ssl/mail.pem" }, "mx.example.org");
    assert.match(text, /inet_listener imap \{\n {4}port = 0\n/);
    assert.ok(lines(text).includes("ssl_cert = </etc/ssl/mail.pem"));
  });

  it("refuses any value that would add a line or a setting", () => {
    for (const hostile of ["mx.example.org\nssl = no", "mx.example.org\r", "mx example.org", "../../etc/passwd", "mx.example.org\u0000"]) {
      assert.throws(() => renderDovecotConf(options("/srv/c"), hostile), isInvalid, JSON.stringify(hostile));
      assert.throws(() => renderMainCf(options("/srv/c"), hostile), isInvalid, JSON.stringify(hostile));
    }
    const bad: Array<(root: string) => MailActuatorOptions> = [
      (r) => options(r, { dovecot: { imapListen: "127.0.0.1:143\nprotocols = pop3" } }),
      (r) => options(r, { dovecot: { imapsListen: "127.0.0.1 993" } }),
      (r) => options(r, { dovecot: { configFile: "/srv/c/dovecot.conf\n!include /etc/shadow" } }),
      (r) => options(r, { dovecot: { usersFile: "/srv/c/users }\npassdb {" } }),
      (r) => options(r, { postfix: { submissionListen: "127.0.0.1:587 -o smtpd_relay_restrictions=" } }),
      (r) => options(r, { postfix: { submissionsListen: "127.0.0.1:99999" } }),
      (r) => options(r, { postfix: { messageSizeLimit: 0 } }),
      (r) => ({ ...options(r), tlsChainFile: "/srv/c/x.pem\nsmtpd_tls_security_level = none" }),
    ];
    for (const make of bad) {
      assert.throws(() => renderDovecotConf(make("/srv/c"), "mx.example.org"), isInvalid);
      assert.throws(() => renderMasterCf(make("/srv/c")), isInvalid);
    }
  });

  it("is a configuration Dovecot's own parser accepts", async (t) => {
    const doveconf = findProgram("doveconf");
    if (doveconf === undefined) {
      if (IN_CI) assert.fail("CI=true: doveconf is missing (Debian package dovecot-core)");
      t.skip("doveconf is not installed");
      return;
    }
    const { dir, cleanup } = await tempRoot("coyote-dovecot-conf-");
    try {
      const opts = options(dir);
      await mkdir(join(dir, "state", "mail", "dovecot"), { recursive: true });
      const conf = join(dir, "state", "mail", "dovecot", "dovecot.conf");
      await writeFile(conf, renderDovecotConf(opts, "mx.example.org"));
      const result = spawnSync(doveconf, ["-c", conf, "-n"], { encoding: "utf8", timeout: 30_000 });
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, /ssl = required/);
    } finally {
      await cleanup();
    }
  });
});

describe("TLS and submission in main.cf and master.cf", () => {
  it("offers STARTTLS on SMTP with the mail hostname's certificate, modern protocols only, and no logins outside submission", () => {
    const text = renderMainCf(options("/srv/c"), "mx.example.org");
    for (const line of [
      "smtpd_tls_chain_files = /srv/c/state/proxy/certs/mx.example.org.pem",
      "smtpd_tls_security_level = may",
      "smtpd_tls_protocols = >=TLSv1.2",
      "smtpd_tls_mandatory_protocols = >=TLSv1.2",
      "smtpd_tls_exclude_ciphers = aNULL, eNULL, EXPORT, LOW, DES, 3DES, RC4, MD5, PSK, SRP",
      "smtpd_sasl_auth_enable = no",
      "smtpd_sender_login_maps = texthash:/srv/c/postfix/sender_logins",
      "message_size_limit = 52428800",
      "virtual_mailbox_limit = 52428800",
      "smtpd_relay_restrictions = reject_unauth_destination",
    ]) assert.ok(lines(text).includes(line), `main.cf has ${JSON.stringify(line)}`);
    assert.doesNotMatch(text, /permit_sasl_authenticated|permit_mynetworks/, "port 25 relays for no one");
  });

  it("has submission (STARTTLS required) and submissions (implicit TLS) with Dovecot SASL, sender checks and relaying for logins only", () => {
    const text = renderMasterCf(options("/srv/c"));
    const service = (listen: string) => {
      const all = lines(text);
      const start = all.findIndex((l) => l.startsWith(`${listen} `));
      assert.ok(start >= 0, `master.cf has ${listen}`);
      const rest = all.slice(start + 1);
      const end = rest.findIndex((l) => !l.startsWith("  -o "));
      return rest.slice(0, end === -1 ? undefined : end).map((l) => l.slice(5));
    };
    for (const [listen, wrapper] of [["127.0.0.1:2587", false], ["[::1]:2465", true]] as const) {
      const o = service(listen);
      assert.equal(o.includes("smtpd_tls_wrappermode=yes"), wrapper);
      for (const want of [
        "smtpd_tls_security_level=encrypt",
        "smtpd_sasl_auth_enable=yes",
        "smtpd_sasl_type=dovecot",
        "smtpd_sasl_path=/srv/c/state/mail/dovecot/run/auth-postfix",
        "smtpd_sender_restrictions=reject_non_fqdn_sender,reject_sender_login_mismatch,permit_sasl_authenticated,reject",
        "smtpd_relay_restrictions=permit_sasl_authenticated,reject_unauth_destination",
      ]) assert.ok(o.includes(want), `${listen} has -o ${want}`);
    }
    assert.ok(lines(text).some((l) => /^tlsmgr\s+unix/.test(l)));
    const without = renderMasterCf(options("/srv/c", { postfix: { submissionListen: undefined, submissionsListen: undefined } }));
    assert.doesNotMatch(without, /smtpd_sasl_auth_enable=yes/);
  });
});

describe("the sender login map", () => {
  it("lets each mailbox send as itself and as the aliases that forward to it, and no one as another service's address", () => {
    const maps = renderMaps(
      [
        { schemaVersion: 1, id: "alpha", domains: ["a.test"], mailboxes: [{ address: "alice@a.test", passwordHash: "{SHA512-CRYPT}$6$x$y" }, { address: "bob@a.test", passwordHash: "{SHA512-CRYPT}$6$x$z" }], aliases: [{ address: "info@a.test", to: ["alice@a.test", "Bob@a.test", "friend@elsewhere.test"] }, { address: "out@a.test", to: ["friend@elsewhere.test"] }] },
        { schemaVersion: 1, id: "beta", domains: ["b.test"], mailboxes: [{ address: "carol@b.test", passwordHash: "{SHA512-CRYPT}$6$x$w" }], aliases: [{ address: "team@b.test", to: ["alice@a.test"] }] },
      ],
      { mailRoot: "/srv/mail", vmailUid: 5000, vmailGid: 5000 },
    );
    const entries = maps.senderLogins.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
    assert.deepEqual(entries, ["alice@a.test alice@a.test", "bob@a.test bob@a.test", "carol@b.test carol@b.test", "info@a.test alice@a.test,bob@a.test"]);
  });
});
