/**
 * The Dovecot configuration the mail actuator renders: IMAP over TLS on the Maildirs Postfix
 * delivers to, logins from the actuator's users file, and the SASL socket Postfix's submission
 * authenticates through. Pure and deterministic.
 */
import { join } from "node:path";
import { ActuatorError } from "@coyote/actuator";
import { resolveOptions, splitListen, tlsChainFileOf } from "./options.ts";
import type { MailActuatorOptions, ResolvedOptions } from "./options.ts";

/** The SASL socket Dovecot offers Postfix, relative to Dovecot's `base_dir`. */
export const AUTH_SOCKET_NAME = "auth-postfix";

/** Where Dovecot's runtime folders and the SASL socket are, for an instance's `dovecot.conf`. */
export function dovecotRuntime(options: ResolvedOptions): { baseDir: string; stateDir: string; authSocket: string } {
  const baseDir = join(options.dovecotDir, "run");
  return { baseDir, stateDir: join(options.dovecotDir, "state"), authSocket: join(baseDir, AUTH_SOCKET_NAME) };
}

/**
 * Refuses a rendered file with a value that would have added a line or a setting: every value
 * was checked on its way in, and this is the last guard before a daemon reads it.
 * @throws ActuatorError `InvalidOptions` (terminal).
 */
export function checkRendered(lines: readonly string[], what: string): string {
  for (const line of lines) {
    if (Array.from(line).some((c) => (c < " " && c !== "\t") || c === "\u007f")) {
      throw new ActuatorError("InvalidOptions", `rendering ${what}: a value holds a control character (${JSON.stringify(line.slice(0, 120))})`, { terminal: true });
    }
  }
  return `${lines.join("\n")}\n`;
}

function listener(name: string, listen: string | undefined, ssl: boolean): string[] {
  // Port 0 turns a listener off (Dovecot has it built in otherwise, on every address).
  if (listen === undefined) return [`  inet_listener ${name} {`, "    port = 0", "  }"];
  const { address, port } = splitListen(listen);
  return [`  inet_listener ${name} {`, `    address = ${address}`, `    port = ${port}`, ...(ssl ? ["    ssl = yes"] : []), "  }"];
}

/**
 * Renders the instance's `dovecot.conf`: IMAP only (STARTTLS required before a login on
 * `imapListen`, implicit TLS on `imapsListen`), with the certificate of the mail hostname; logins
 * and users from the users file, whose entries name each Maildir
 * (`<mailRoot>/<domain>/<localpart>/`, where Postfix's virtual transport delivers); only the vmail
 * uid and gid may own a mailbox; the SASL socket for Postfix in `base_dir`, owned by `postfix`;
 * logs on standard error (the supervisor's `logs/dovecot.log`).
 * @param input the actuator's options (or the same, already resolved).
 * @param defaultHostname the mail hostname when the options set no `myhostname` (the server spec's hostname).
 * @throws ActuatorError `InvalidOptions` for a bad option or a value that would add a line.
 */
export function renderDovecotConf(input: MailActuatorOptions | ResolvedOptions, defaultHostname?: string): string {
  const options = "postfix" in input ? resolveOptions(input) : input;
  const runtime = dovecotRuntime(options);
  const chain = tlsChainFileOf(options, options.myhostname ?? defaultHostname);
  const lines = [
    "# Rendered by Coyote (actuator.mailconf.postfix): edits here are overwritten.",
    `base_dir = ${runtime.baseDir}`,
    `state_dir = ${runtime.stateDir}`,
    "instance_name = coyote",
    "protocols = imap",
    "log_path = /dev/stderr",
    "default_internal_user = dovecot",
    "default_login_user = dovenull",
    "",
    "# Mailboxes: the Maildirs Postfix delivers to, owned by the vmail uid and gid only.",
    "mail_location = maildir:~",
    `first_valid_uid = ${options.vmailUid}`,
    `last_valid_uid = ${options.vmailUid}`,
    `first_valid_gid = ${options.vmailGid}`,
    `last_valid_gid = ${options.vmailGid}`,
    "",
    "# TLS everywhere: no login before it, TLS 1.2 or later, forward-secret ciphers only.",
    "ssl = required",
    ...(chain === undefined ? [] : [`ssl_cert = <${chain}`, `ssl_key = <${chain}`]),
    "ssl_min_protocol = TLSv1.2",
    "ssl_cipher_list = ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!EXPORT:!LOW:!MD5:!RC4:!3DES",
    "ssl_prefer_server_ciphers = yes",
    "disable_plaintext_auth = yes",
    "auth_mechanisms = plain login",
    "auth_username_format = %Lu",
    "",
    ...renderDovecotAuthConf(options.usersFile).split("\n"),
    "service imap-login {",
    ...listener("imap", options.imapListen, false),
    ...listener("imaps", options.imapsListen, true),
    // One process per connection (Dovecot's high-security mode), at most this many at once.
    "  service_count = 1",
    "  process_limit = 256",
    "}",
    "service imap {",
    "  process_limit = 512",
    "}",
    "protocol imap {",
    "  mail_max_userip_connections = 20",
    "}",
    "",
    "# SASL for Postfix's submission services.",
    "service auth {",
    `  unix_listener ${AUTH_SOCKET_NAME} {`,
    "    mode = 0660",
    "    user = postfix",
    "    group = postfix",
    "  }",
    "}",
  ];
  return checkRendered(lines, "dovecot.conf");
}

/**
 * Renders the `passdb` and `userdb` sections that make Dovecot read the actuator's users file, for
 * the installer's `dovecot.conf` (and the tests'). Dovecot re-reads a passwd-file by itself when
 * its mtime or size changes (checked at most once a second, on a lookup), so users never need a
 * Dovecot reload. The file's entries carry `userdb_mail=maildir:~`, so no `mail_location` is needed.
 * @param usersFile the users file (`dovecot.usersFile`).
 */
export function renderDovecotAuthConf(usersFile: string): string {
  return [
    "# Rendered by Coyote (actuator.mailconf.postfix): mailbox users of every hosted service.",
    "passdb {",
    "  driver = passwd-file",
    `  args = ${usersFile}`,
    "}",
    "userdb {",
    "  driver = passwd-file",
    `  args = ${usersFile}`,
    "}",
    "",
  ].join("\n");
}
