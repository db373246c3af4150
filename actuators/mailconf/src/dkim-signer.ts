/**
 * The DKIM signer's files: OpenDKIM, as a milter that Postfix calls, signs the mail of every
 * hosted domain with the key whose public half dnsconf publishes (`mail/dkim/<domain>.key` and
 * `.json`, made by this actuator's apply).
 *
 * Under `<stateDir>/mail/opendkim/`: `opendkim.conf` (run as `opendkim -f -x opendkim.conf`),
 * `KeyTable` and `SigningTable` (one line per domain), `InternalHosts` (who may have mail signed
 * without authenticating: loopback only), `keys/<domain>.private` (copies of the keys, readable only
 * by the signer's user) and `run/opendkim.sock` (the milter socket, made by OpenDKIM).
 */
import { createPrivateKey } from "node:crypto";
import { chmod, chown, readdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ActuatorError, errorText, readTextIfExists } from "@coyote/actuator";
import { DomainName, removeStaleTempFiles } from "@coyote/spec";
import { DkimRecordFile, dkimRecordOf } from "./dkim.ts";
import { ensureDir, removeFile, writeIfChanged } from "./files.ts";

/** The user and group OpenDKIM switches to (its `UserID user:group`) when it is started as root. */
export interface SignerAccount {
  /** The user (Debian's package makes `opendkim`): it alone can read the key copies. */
  readonly user: string;
  readonly uid: number;
  /**
   * The group the signer runs with, which its unix socket belongs to: Postfix's (`postfix`), so
   * that Postfix's smtpd and cleanup can connect to it and no other user can.
   */
  readonly group: string;
  readonly gid: number;
}

/** Where Postfix reaches the signer. */
export type MilterSocket =
  /** A unix socket in `<stateDir>/mail/opendkim/run/` (the default): only the socket's group connects. */
  | { readonly kind: "unix" }
  /** A TCP port on 127.0.0.1: any local process could ask for signatures, so only where no other user runs. */
  | { readonly kind: "inet"; readonly port: number };

/** How the signer's files are made. */
export interface DkimSignerOptions {
  /** The state folder: keys are read from `mail/dkim/`, the signer's files written to `mail/opendkim/`. */
  readonly stateDir: string;
  /** The milter socket; a unix socket by default. */
  readonly socket?: MilterSocket;
  /**
   * Whom OpenDKIM runs as when started as root; without it, as whoever starts it. Required when the
   * files are written as root with a unix socket: the socket would be root's alone.
   */
  readonly account?: SignerAccount;
  /**
   * What Postfix does with a message when the signer cannot be reached (`milter_default_action`):
   * `tempfail` by default, see {@link postfixMilterLines}.
   */
  readonly unreachable?: "tempfail" | "accept";
}

/** The signer's files in a state folder. */
export interface SignerPaths {
  readonly root: string;
  readonly conf: string;
  readonly keyTable: string;
  readonly signingTable: string;
  readonly internalHosts: string;
  readonly keys: string;
  readonly run: string;
  readonly socket: string;
}

/** Where the signer's files are: `<stateDir>/mail/opendkim/`. */
export function signerPaths(stateDir: string): SignerPaths {
  const root = join(stateDir, "mail", "opendkim");
  return {
    root,
    conf: join(root, "opendkim.conf"),
    keyTable: join(root, "KeyTable"),
    signingTable: join(root, "SigningTable"),
    internalHosts: join(root, "InternalHosts"),
    keys: join(root, "keys"),
    run: join(root, "run"),
    socket: join(root, "run", "opendkim.sock"),
  };
}

/** One domain the signer signs for. */
export interface SignerDomain {
  readonly domain: string;
  readonly selector: string;
}

/** A domain left unsigned, and why. */
export interface SkippedDomain {
  readonly file: string;
  readonly why: string;
}

/** The rendered files (text only; the key copies are written by {@link writeSignerFiles}). */
export interface SignerFiles {
  readonly conf: string;
  readonly keyTable: string;
  readonly signingTable: string;
  readonly internalHosts: string;
}

const HEADER = "# Rendered by Coyote (actuator.mailconf.postfix, DKIM signer): edits here are overwritten.";
const SELECTOR = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
// Paths become values in OpenDKIM's files, where whitespace separates fields, `#` starts a
// comment and `:` separates a KeyTable entry's parts: such paths are refused, not escaped.
const SAFE_PATH = /^\/[A-Za-z0-9._/@+-]*$/;

function invalid(message: string): ActuatorError {
  return new ActuatorError("InvalidDkimSigner", `rendering the dkim signer: ${message}`, { terminal: true });
}

function checkedPath(what: string, path: string): string {
  if (!SAFE_PATH.test(path)) throw invalid(`${what} must be an absolute path of letters, digits and ._/@+- (got ${JSON.stringify(path)})`);
  return path;
}

function checkedDomain(entry: SignerDomain): SignerDomain {
  if (!DomainName.safeParse(entry.domain).success) throw invalid(`${JSON.stringify(entry.domain)} is not a domain name`);
  if (!SELECTOR.test(entry.selector)) throw invalid(`the selector of ${entry.domain} is not one DNS label (got ${JSON.stringify(entry.selector)})`);
  return entry;
}

/** The Socket value of `opendkim.conf` and the address Postfix's `smtpd_milters` names. */
export function milterAddresses(options: DkimSignerOptions): { opendkim: string; postfix: string } {
  const socket = options.socket ?? { kind: "unix" };
  if (socket.kind === "inet") {
    if (!Number.isInteger(socket.port) || socket.port < 1 || socket.port > 65535) throw invalid(`the milter port must be 1-65535 (got ${String(socket.port)})`);
    return { opendkim: `inet:${socket.port}@[127.0.0.1]`, postfix: `inet:127.0.0.1:${socket.port}` };
  }
  const path = checkedPath("the state folder", signerPaths(options.stateDir).socket);
  return { opendkim: `local:${path}`, postfix: `unix:${path}` };
}

/**
 * Renders the signer's configuration and tables. Pure and deterministic (domains sorted), so a
 * rewrite can be told from a change.
 *
 * OpenDKIM signs a message only when its From: domain has a SigningTable line and the client either
 * authenticated (Postfix passes `{auth_type}`) or connected from an `InternalHosts` address
 * (loopback only): mail relayed in from elsewhere is never signed. `Mode s` signs and never
 * verifies. A key that cannot be read at signing time makes the message wait (`tempfail`) rather
 * than bounce.
 * @throws ActuatorError `InvalidDkimSigner` (terminal) when a domain, selector or path could add a line or a field.
 */
export function renderSignerFiles(domains: readonly SignerDomain[], options: DkimSignerOptions): SignerFiles {
  const paths = signerPaths(checkedPath("the state folder", options.stateDir));
  const sorted = domains.map(checkedDomain).sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  const account = options.account;
  if (account !== undefined && (!USER.test(account.user) || !USER.test(account.group))) throw invalid(`the signer's user and group must be system names (got ${JSON.stringify(`${account.user}:${account.group}`)})`);
  const keyName = (d: SignerDomain) => `${d.selector}._domainkey.${d.domain}`;
  const conf = [
    HEADER,
    "Mode                    s",
    "Background              no",
    "Syslog                  yes",
    "SyslogSuccess           yes",
    "Canonicalization        relaxed/relaxed",
    "SignatureAlgorithm      rsa-sha256",
    // A second From: added after signing would show in the signature's h= and break it.
    "OversignHeaders         From",
    `KeyTable                file:${paths.keyTable}`,
    `SigningTable            refile:${paths.signingTable}`,
    `InternalHosts           file:${paths.internalHosts}`,
    `Socket                  ${milterAddresses(options).opendkim}`,
    // The socket: read and write for the signer and its group (Postfix's) only.
    "UMask                   007",
    ...(account === undefined ? [] : [`UserID                  ${account.user}:${account.group}`]),
    // OpenDKIM's own check of the keys' folders also refuses a sticky folder others may write to
    // (/tmp), which cannot have an entry of someone else's renamed or removed. The writer makes
    // the same guarantee itself (writeSignerFiles: key copies 0600 in a 0700 folder, the signer's
    // own, below no folder others may write to unless it is sticky), so it is not asked twice.
    "RequireSafeKeys         no",
    "On-SignatureError       tempfail",
    "On-InternalError        tempfail",
    "SoftwareHeader          no",
    "",
  ].join("\n");
  return {
    conf,
    keyTable: `${HEADER}\n${sorted.map((d) => `${keyName(d)} ${d.domain}:${d.selector}:${join(paths.keys, `${d.domain}.private`)}\n`).join("")}`,
    // refile patterns: `*@example.org` matches that domain's addresses only, no sub- or lookalike domain.
    signingTable: `${HEADER}\n${sorted.map((d) => `*@${d.domain} ${keyName(d)}\n`).join("")}`,
    internalHosts: `${HEADER}\n127.0.0.1\n::1\n`,
  };
}

/**
 * The `main.cf` lines that send Postfix's mail through the signer: SMTP clients (`smtpd_milters`)
 * and mail submitted on the box (`non_smtpd_milters`, for `sendmail` and `pickup`).
 *
 * `milter_default_action = tempfail` by default: while the signer is down a message is answered
 * with a 4xx and retried by its sender (or stays in Postfix's own queue for local submission),
 * rather than leaving unsigned under the DMARC policy the box publishes, where receivers would
 * quarantine it without anyone knowing. The cost is that mail coming in is deferred as well while
 * the signer is down; the supervisor restarts it within seconds and senders retry.
 * Deadlines: 10 s to connect, 30 s per command, 60 s for the message's content.
 */
export function postfixMilterLines(options: DkimSignerOptions): string[] {
  const address = milterAddresses(options).postfix;
  return [
    "# DKIM signing of outgoing mail (OpenDKIM as a milter).",
    `smtpd_milters = ${address}`,
    `non_smtpd_milters = ${address}`,
    `milter_default_action = ${options.unreachable ?? "tempfail"}`,
    "milter_protocol = 6",
    "milter_connect_timeout = 10s",
    "milter_command_timeout = 30s",
    "milter_content_timeout = 60s",
  ];
}

/**
 * Reads the hosted domains' DKIM records (`mail/dkim/<domain>.json`) and checks each key against
 * its record: a domain is signed for only when its key file holds an RSA key whose public half is
 * the published one (a signature no receiver can verify is worse than none).
 * @returns the domains with their keys' PEM, and the files left out with the reason.
 */
export async function readSignerDomains(stateDir: string): Promise<{ domains: Array<SignerDomain & { pem: string }>; skipped: SkippedDomain[] }> {
  const dir = join(stateDir, "mail", "dkim");
  const names = await readdir(dir).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  });
  const domains: Array<SignerDomain & { pem: string }> = [];
  const skipped: SkippedDomain[] = [];
  for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort()) {
    const file = join(dir, name);
    const domain = name.slice(0, -".json".length);
    if (!DomainName.safeParse(domain).success) {
      skipped.push({ file, why: "the file name is not <domain>.json" });
      continue;
    }
    try {
      const record = DkimRecordFile.parse(JSON.parse((await readTextIfExists(file)) ?? "null"));
      const pem = await readTextIfExists(join(dir, `${domain}.key`));
      if (pem === undefined) {
        skipped.push({ file, why: `no key file ${domain}.key` });
        continue;
      }
      if (dkimRecordOf(pem, record.selector).txt !== record.txt) {
        skipped.push({ file, why: `the key in ${domain}.key is not the one the record publishes` });
        continue;
      }
      domains.push({ domain, selector: record.selector, pem });
    } catch (error) {
      skipped.push({ file, why: errorText(error) });
    }
  }
  return { domains, skipped };
}

/**
 * Checks the folders above the signer's files: none may let others replace what is below it (a
 * folder others may write to, unless it is sticky, as `/tmp` is: there only an entry's owner may
 * rename or remove it), since OpenDKIM's own check of this is off (see the rendered
 * RequireSafeKeys). OpenDKIM takes on its account before it makes its socket and reads a key, so
 * that account must pass through each one (but the state folder itself, through which whoever
 * starts the signer gives its user passage with an ACL: the daemon supervisor, or the installer).
 * Without this the signer would start and then answer every message with a temporary failure.
 * @throws ActuatorError `DkimSignerUnsafe` (retried: a fixed folder mode is picked up) naming the folder.
 */
async function checkFolders(dir: string, stateDir: string, account: SignerAccount | undefined): Promise<void> {
  for (let current = dir; ; current = dirname(current)) {
    const stats = await stat(current);
    const mode = stats.mode & 0o7777;
    if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
      throw new ActuatorError("DkimSignerUnsafe", `writing the dkim signer: ${current} is writable by others and not sticky (mode ${mode.toString(8)}), so anyone could replace the signer's keys below it`);
    }
    if (account !== undefined && account.uid !== 0 && current !== stateDir) {
      const bit = stats.uid === account.uid ? 0o100 : stats.gid === account.gid ? 0o010 : 0o001;
      if ((mode & bit) === 0) throw new ActuatorError("DkimSignerUnsafe", `writing the dkim signer: ${account.user} cannot pass through ${current} (mode ${mode.toString(8)}), and OpenDKIM runs as ${account.user} (0711 lets it through without listing)`);
    }
    if (dirname(current) === current) return;
  }
}

async function ensureOwned(path: string, uid: number, gid: number, mode: number): Promise<void> {
  const stats = await stat(path);
  if (stats.uid !== uid || stats.gid !== gid) await chown(path, uid, gid);
  if ((stats.mode & 0o7777) !== mode) await chmod(path, mode);
}

/** What {@link writeSignerFiles} did. */
export interface SignerWriteResult {
  /** The files written (a running signer re-reads its tables on SIGUSR1). */
  readonly changed: readonly string[];
  /** The domains signed for. */
  readonly domains: readonly string[];
  /** The domains left unsigned, and why. */
  readonly skipped: readonly SkippedDomain[];
}

/**
 * Writes the signer's files for every hosted domain whose key is usable: the configuration and
 * tables (mode 0644, rewritten only when they change), the key copies (0600 in a 0700 folder, owned
 * by the signer's user when one is given) and the socket's folder (0750, the signer's user and
 * group). Key copies of domains no longer hosted are removed. Safe to run again after being
 * killed halfway.
 * @throws ActuatorError `InvalidDkimSigner` (terminal) for a state folder or account that cannot be
 *   written into the files; `DkimSignerUnsafe` when OpenDKIM could not use them (see the message).
 */
export async function writeSignerFiles(options: DkimSignerOptions): Promise<SignerWriteResult> {
  const paths = signerPaths(options.stateDir);
  const { domains, skipped } = await readSignerDomains(options.stateDir);
  const files = renderSignerFiles(domains, options);
  const account = options.account;
  const self = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  if (account === undefined && self.uid === 0 && (options.socket ?? { kind: "unix" }).kind === "unix") {
    // OpenDKIM would keep root's rights while parsing mail, and make a socket Postfix cannot open.
    throw invalid("as root the signer needs an account (the opendkim user with postfix's group) to run as");
  }
  await ensureDir(paths.root);
  // paths.root is <state>/mail/opendkim: two levels up is the state folder, as the walk spells it.
  await checkFolders(paths.root, dirname(dirname(paths.root)), account);
  // An earlier write killed halfway may have left a temporary copy of a key.
  for (const dir of [paths.root, paths.keys]) await removeStaleTempFiles(dir);
  const owner = account ?? self;
  await ensureDir(paths.keys, { uid: owner.uid, gid: owner.gid, mode: 0o700 });
  await ensureDir(paths.run, { uid: owner.uid, gid: owner.gid, mode: 0o750 });
  const changed: string[] = [];
  const wanted = new Set<string>();
  for (const { domain, pem } of domains) {
    const path = join(paths.keys, `${domain}.private`);
    wanted.add(`${domain}.private`);
    // The copy is a PKCS#8 PEM OpenDKIM reads; re-exported so that nothing but the key is in it.
    const text = createPrivateKey(pem).export({ type: "pkcs8", format: "pem" }).toString();
    if (await writeIfChanged(path, text, 0o600)) changed.push(path);
    if (account !== undefined) await ensureOwned(path, account.uid, account.gid, 0o600);
  }
  // Keys first, tables next, stale keys last: a table line never names a key that is not there.
  for (const [path, text] of [[paths.keyTable, files.keyTable], [paths.signingTable, files.signingTable], [paths.internalHosts, files.internalHosts], [paths.conf, files.conf]] as const) {
    if (await writeIfChanged(path, text, 0o644)) changed.push(path);
  }
  for (const name of await readdir(paths.keys)) {
    if (name.endsWith(".private") && !wanted.has(name) && (await removeFile(join(paths.keys, name)))) changed.push(join(paths.keys, name));
  }
  return { changed, domains: domains.map((d) => d.domain), skipped };
}
