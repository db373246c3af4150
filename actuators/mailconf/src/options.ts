import { dirname, isAbsolute, join } from "node:path";
import { ActuatorError } from "@coyote/actuator";
import { certificateFileName, proxyRuntimePaths } from "@coyote/spec";
import type { DkimSignerOptions } from "./dkim-signer.ts";
import { DEFAULT_PASSWORD_SCHEMES } from "./password.ts";

/** The Postfix instance the actuator configures (its own config folder, not the system's). */
export interface PostfixOptions {
  /**
   * The instance's config folder (`postfix -c DIR`). The actuator owns `main.cf`, `master.cf` and
   * the maps `virtual_domains`, `virtual_mailboxes` and `virtual_aliases` in it.
   */
  readonly configDir: string;
  /** The instance's `queue_directory`; created when missing (Postfix fills it on `check`/`start`). */
  readonly queueDirectory: string;
  /** The instance's `data_directory`; Postfix creates it owned by `postfix` on `start`. */
  readonly dataDirectory: string;
  /** Where SMTP listens, `host:port` or `[v6]:port`, e.g. `127.0.0.1:2525` in tests, `0.0.0.0:25` in production. */
  readonly smtpListen: string;
  /** The `postfix` command (default `/usr/sbin/postfix`); tests wrap it to count reloads. */
  readonly postfixBin?: string;
  /** The instance's `myhostname`; the server spec's hostname when not given. */
  readonly myhostname?: string;
  /**
   * Postfix's `maillog_file` (needs the `postlog` service, which `master.cf` always has). When not
   * given Postfix logs to syslog. `/dev/stdout` suits `postfix start-fg` without syslog; tests
   * give a file.
   */
  readonly maillogFile?: string;
  /**
   * Where authenticated submission listens with STARTTLS required (`host:port`, 587 in
   * production). Without it there is no submission service.
   */
  readonly submissionListen?: string;
  /** Where authenticated submission listens with implicit TLS (`host:port`, 465 in production). Without it, none. */
  readonly submissionsListen?: string;
  /** The largest message accepted, in bytes (default 50 MiB). */
  readonly messageSizeLimit?: number;
}

/** The Dovecot side: only its users file, which this actuator owns. */
export interface DovecotOptions {
  /**
   * The passwd-file that Dovecot's `passdb` and `userdb` read (see {@link renderDovecotAuthConf}).
   * Its folder belongs to the actuator as well: with `readerGid` it is made mode 0750 for that
   * group, so give the file a folder of its own (e.g. `/etc/dovecot/coyote/users`).
   */
  readonly usersFile: string;
  /**
   * The group that may read the users file: Dovecot's auth process runs as the `dovecot` user, so
   * production gives the `dovecot` group's gid. The file is then mode 0644 inside a folder of mode
   * 0750 owned by root and this group (a file written atomically cannot be given a group before it
   * replaces the old one, a folder can). Without it the file is mode 0600, readable by root only.
   */
  readonly readerGid?: number;
  /**
   * The password schemes Dovecot may verify, upper case. Default {@link DEFAULT_PASSWORD_SCHEMES}:
   * what `doveadm pw -l` lists on Debian 12, without the clear-text ones.
   */
  readonly passwordSchemes?: readonly string[];
  /**
   * The `dovecot.conf` the actuator renders (default `<stateDir>/mail/dovecot/dovecot.conf`, where
   * the daemon catalogue runs Dovecot from). Its `base_dir` and `state_dir` are `run/` and `state/`
   * beside it, and Postfix's SASL socket is `run/auth-postfix`.
   */
  readonly configFile?: string;
  /** Where IMAP listens with STARTTLS required before login (`host:port`, 143 in production). Without it, no such listener. */
  readonly imapListen?: string;
  /** Where IMAP listens with implicit TLS (`host:port`, 993 in production). Without it, no such listener. */
  readonly imapsListen?: string;
  /** The `doveadm` command (default `/usr/bin/doveadm`): reloads and the readiness check of `MailReady`. */
  readonly doveadmBin?: string;
}

/** Everything {@link createMailActuator} needs: every path, port and binary it touches. */
export interface MailActuatorOptions {
  /** The state folder (`COYOTE_STATE`); the actuator keeps its files in `<stateDir>/mail/`. */
  readonly stateDir: string;
  /** The Postfix instance. */
  readonly postfix: PostfixOptions;
  /** The Dovecot users file. */
  readonly dovecot: DovecotOptions;
  /** Where the Maildirs live: `<mailRoot>/<domain>/<localpart>/` (Postfix's `virtual_mailbox_base`). */
  readonly mailRoot: string;
  /** The uid that owns every Maildir (Postfix's `virtual_uid_maps`, Dovecot's user uid). At least 1. */
  readonly vmailUid: number;
  /** The gid that owns every Maildir. At least 1. */
  readonly vmailGid: number;
  /** The DKIM selector published for every domain (default `coyote`). */
  readonly dkimSelector?: string;
  /**
   * The PEM file with the private key, then the certificate chain, that SMTP, submission and IMAP
   * present. Default: the one snickers issues for the mail hostname (`myhostname`, else the server
   * spec's hostname), `<stateDir>/proxy/certs/<hostname>.pem`.
   */
  readonly tlsChainFile?: string;
  /**
   * Whether `MailReady` waits for the running daemons: True only once Postfix runs with the
   * service's maps loaded and Dovecot's running auth service knows each of its mailboxes; until
   * then False, naming the daemon that is down or behind, and looked at again shortly. Without
   * it the condition means "configured" (for a box whose daemons nobody runs yet).
   */
  readonly verifyDaemons?: boolean;
  /**
   * The DKIM signer (OpenDKIM) that Postfix passes mail through. When given, each commit writes
   * its configuration, tables and key copies for every hosted domain with a key (`mail/opendkim/`,
   * which the daemon supervisor watches and reloads it on), and main.cf names its milter. Without
   * it mail goes out unsigned.
   */
  readonly dkimSigner?: Omit<DkimSignerOptions, "stateDir">;
}

/** The options with their defaults filled in, checked once by the factory. */
export interface ResolvedOptions {
  readonly stateDir: string;
  readonly configDir: string;
  readonly queueDirectory: string;
  readonly dataDirectory: string;
  readonly smtpListen: string;
  readonly postfixBin: string;
  readonly myhostname: string | undefined;
  readonly maillogFile: string | undefined;
  readonly submissionListen: string | undefined;
  readonly submissionsListen: string | undefined;
  readonly messageSizeLimit: number;
  readonly usersFile: string;
  readonly dovecotConf: string;
  readonly dovecotDir: string;
  readonly imapListen: string | undefined;
  readonly imapsListen: string | undefined;
  readonly doveadmBin: string;
  readonly tlsChainFile: string | undefined;
  readonly verifyDaemons: boolean;
  readonly dkimSigner: DkimSignerOptions | undefined;
  readonly readerGid: number | undefined;
  readonly passwordSchemes: ReadonlySet<string>;
  readonly mailRoot: string;
  readonly vmailUid: number;
  readonly vmailGid: number;
  readonly dkimSelector: string;
}

const SELECTOR = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const HOSTNAME = /^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;
// A path goes into main.cf, master.cf and the passwd-file (whose fields are colon separated), so
// whitespace, colons, commas and `$` (Postfix expands it) are refused rather than escaped.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;

function optionError(message: string): ActuatorError {
  return new ActuatorError("InvalidOptions", `configuring the mail actuator: ${message}`, { terminal: true });
}

function checkPath(name: string, value: string): string {
  if (!isAbsolute(value) || !SAFE_PATH.test(value)) {
    throw optionError(`${name} must be an absolute path of letters, digits and ._/@+- (got ${JSON.stringify(value)})`);
  }
  return value.length > 1 ? value.replace(/\/+$/, "") : value;
}

function checkId(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 0x7fffffff) throw optionError(`${name} must be a whole number of at least 1 (got ${String(value)})`);
  return value;
}

/**
 * Parses `host:port` or `[v6]:port` as Postfix's `master.cf` writes a listener.
 * @returns the listener as given, once checked.
 */
export function checkListen(value: string, name = "postfix.smtpListen"): string {
  const match = /^(\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]+):([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) throw optionError(`${name} must be host:port or [v6]:port (got ${JSON.stringify(value)})`);
  return value;
}

function optionalListen(name: string, value: string | undefined): string | undefined {
  return value === undefined ? undefined : checkListen(value, name);
}

/**
 * Checks the options and fills in the defaults. Pure: it touches nothing on disk.
 * @throws ActuatorError `InvalidOptions` (terminal) naming the bad option.
 */
export function resolveOptions(options: MailActuatorOptions): ResolvedOptions {
  const selector = options.dkimSelector ?? "coyote";
  if (!SELECTOR.test(selector)) throw optionError(`dkimSelector must be one DNS label of a-z, 0-9 and inner hyphens (got ${JSON.stringify(selector)})`);
  const myhostname = options.postfix.myhostname;
  if (myhostname !== undefined && !HOSTNAME.test(myhostname)) throw optionError(`postfix.myhostname is not a lowercase host name (got ${JSON.stringify(myhostname)})`);
  const schemes = options.dovecot.passwordSchemes ?? DEFAULT_PASSWORD_SCHEMES;
  for (const scheme of schemes) {
    if (!/^[A-Z0-9.-]+$/.test(scheme)) throw optionError(`dovecot.passwordSchemes holds ${JSON.stringify(scheme)}, not an upper-case scheme name`);
  }
  const sizeLimit = options.postfix.messageSizeLimit ?? 50 * 1024 * 1024;
  if (!Number.isInteger(sizeLimit) || sizeLimit < 1024 || sizeLimit > 1024 ** 3) throw optionError(`postfix.messageSizeLimit must be a whole number of bytes from 1024 to 1 GiB (got ${String(sizeLimit)})`);
  const stateDir = checkPath("stateDir", options.stateDir);
  const dovecotConf = checkPath("dovecot.configFile", options.dovecot.configFile ?? join(stateDir, "mail", "dovecot", "dovecot.conf"));
  return {
    stateDir,
    configDir: checkPath("postfix.configDir", options.postfix.configDir),
    queueDirectory: checkPath("postfix.queueDirectory", options.postfix.queueDirectory),
    dataDirectory: checkPath("postfix.dataDirectory", options.postfix.dataDirectory),
    smtpListen: checkListen(options.postfix.smtpListen),
    postfixBin: checkPath("postfix.postfixBin", options.postfix.postfixBin ?? "/usr/sbin/postfix"),
    myhostname,
    maillogFile: options.postfix.maillogFile === undefined ? undefined : checkPath("postfix.maillogFile", options.postfix.maillogFile),
    submissionListen: optionalListen("postfix.submissionListen", options.postfix.submissionListen),
    submissionsListen: optionalListen("postfix.submissionsListen", options.postfix.submissionsListen),
    messageSizeLimit: sizeLimit,
    usersFile: checkPath("dovecot.usersFile", options.dovecot.usersFile),
    dovecotConf,
    dovecotDir: dirname(dovecotConf),
    imapListen: optionalListen("dovecot.imapListen", options.dovecot.imapListen),
    imapsListen: optionalListen("dovecot.imapsListen", options.dovecot.imapsListen),
    doveadmBin: checkPath("dovecot.doveadmBin", options.dovecot.doveadmBin ?? "/usr/bin/doveadm"),
    tlsChainFile: options.tlsChainFile === undefined ? undefined : checkPath("tlsChainFile", options.tlsChainFile),
    verifyDaemons: options.verifyDaemons ?? false,
    dkimSigner: options.dkimSigner === undefined ? undefined : { ...options.dkimSigner, stateDir },
    readerGid: options.dovecot.readerGid === undefined ? undefined : checkId("dovecot.readerGid", options.dovecot.readerGid),
    passwordSchemes: new Set(schemes),
    mailRoot: checkPath("mailRoot", options.mailRoot),
    vmailUid: checkId("vmailUid", options.vmailUid),
    vmailGid: checkId("vmailGid", options.vmailGid),
    dkimSelector: selector,
  };
}

/**
 * The PEM (key, then chain) that SMTP, submission and IMAP present: the option, else the one
 * snickers issues for the mail hostname. Checked like every path, so that a hostile hostname
 * cannot reach a configuration file.
 * @param options the resolved options.
 * @param hostname the mail hostname (`myhostname`, else the server spec's hostname).
 * @returns undefined when neither an option nor a hostname names one.
 * @throws ActuatorError `InvalidOptions` when the path is not a safe absolute path.
 */
export function tlsChainFileOf(options: ResolvedOptions, hostname: string | undefined): string | undefined {
  if (options.tlsChainFile !== undefined) return options.tlsChainFile;
  if (hostname === undefined) return undefined;
  if (!HOSTNAME.test(hostname)) throw optionError(`the mail hostname is not a lowercase host name (got ${JSON.stringify(hostname)})`);
  return checkPath("the certificate of the mail hostname", join(proxyRuntimePaths(options.stateDir).certs, certificateFileName(hostname)));
}

/** Splits a checked `host:port` or `[v6]:port` into Dovecot's `address` and `port`. */
export function splitListen(listen: string): { address: string; port: number } {
  const at = listen.lastIndexOf(":");
  return { address: listen.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(listen.slice(at + 1)) };
}
