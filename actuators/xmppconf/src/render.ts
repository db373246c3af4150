import { join } from "node:path";
import { DomainName, ServiceId } from "@coyote/spec";
import type { ScramCredential, ScramHash } from "@coyote/spec";

/**
 * What Prosody 0.12 reads, rendered as text: the main `prosody.cfg.lua`, one file per VirtualHost,
 * and the account files of its `internal_hashed` store. Everything here is pure, so that `plan`
 * can compare the desired text with what is on disk byte for byte.
 */

/** The main configuration file's name inside the configuration folder. */
export const MAIN_CONFIG_FILE = "prosody.cfg.lua";
/** The folder, inside the configuration folder, of the per-VirtualHost files. */
export const HOSTS_DIR = "conf.d";
/** The suffix of a per-VirtualHost file, matched by the main file's `Include`. */
export const HOST_FILE_SUFFIX = ".cfg.lua";

/**
 * The modules a production Prosody loads: the set Debian's default configuration enables, less
 * those that let users create accounts or change passwords in band (`register`, `invites*`:
 * accounts come from the spec only, and an in-band password change would be overwritten by the
 * next reconcile), less those that need an HTTP listener, plus `admin_shell`, which `commit`
 * needs to activate new VirtualHosts. `posix` is loaded by Prosody itself on POSIX systems.
 */
export const DEFAULT_PROSODY_MODULES: readonly string[] = [
  "disco",
  "roster",
  "saslauth",
  "tls",
  "blocklist",
  "bookmarks",
  "carbons",
  "dialback",
  "limits",
  "pep",
  "private",
  "smacks",
  "vcard4",
  "vcard_legacy",
  "csi_simple",
  "ping",
  "time",
  "uptime",
  "version",
  "admin_shell",
];

/**
 * The SASL mechanisms Prosody must never offer: every one but SCRAM (PLAIN and LOGIN send the
 * password itself, DIGEST-MD5 needs it in clear on the server).
 */
export const DISABLED_SASL_MECHANISMS: readonly string[] = ["DIGEST-MD5", "LOGIN", "PLAIN", "X-OAUTH2"];

/** What the main configuration file is rendered from (resolved, absolute paths). */
export interface MainConfigInput {
  /** The configuration folder (the per-host files are in its `conf.d/`). */
  readonly configDir: string;
  /** Prosody's `data_path`. */
  readonly dataDir: string;
  /** Prosody's `pidfile`. */
  readonly pidFile: string;
  /** The file Prosody logs to, or `*console` for its standard output. */
  readonly logFile: string;
  /** The lowest level written to the log file. */
  readonly logLevel: "debug" | "info" | "warn" | "error";
  /** The addresses Prosody listens on. */
  readonly interfaces: readonly string[];
  /** Client-to-server ports (STARTTLS). */
  readonly c2sPorts: readonly number[];
  /** Server-to-server ports. */
  readonly s2sPorts: readonly number[];
  /** The modules to load; `admin_shell` is added when missing. */
  readonly modules: readonly string[];
  /** Whether clients and servers must use TLS (`c2s_require_encryption`, `s2s_require_encryption`). */
  readonly requireEncryption: boolean;
  /** Whether to allow Prosody (and prosodyctl) to run as root, for tests that run as root. */
  readonly runAsRoot: boolean;
  /**
   * The loopback port of Prosody's HTTP server, which serves file sharing's uploads to the box's
   * proxy. Prosody opens it only while a module needs HTTP (a file sharing component); without it
   * no HTTP port is configured at all.
   */
  readonly httpPort?: number;
}

/** The address Prosody's HTTP server listens on: loopback only, the box's proxy in front. */
export const HTTP_INTERFACE = "127.0.0.1";

const NAMED_ESCAPES: Readonly<Record<number, string>> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
  0x5c: "\\\\",
  0x22: '\\"',
  0x27: "\\'",
};

/**
 * A Lua string literal of some bytes, escaped as Prosody's own serializer does (printable ASCII
 * as is, the usual named escapes, every other byte as `\ddd`), so that binary salts survive and
 * the text is pure ASCII.
 */
export function luaString(value: string | Uint8Array): string {
  const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
  let out = '"';
  for (const byte of bytes) {
    const named = NAMED_ESCAPES[byte];
    if (named !== undefined) out += named;
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString().padStart(3, "0")}`;
  }
  return `${out}"`;
}

function luaList(values: readonly (string | number)[]): string {
  if (values.length === 0) return "{ }";
  return `{ ${values.map((v) => (typeof v === "number" ? String(v) : luaString(v))).join("; ")} }`;
}

/**
 * Renders the main `prosody.cfg.lua`. Deterministic: the same input gives the same bytes.
 * Direct-TLS and HTTPS listeners are switched off explicitly: they would otherwise bind Prosody's
 * default ports on every interface. The HTTP listener is on loopback only (`httpPort`), or off; the
 * box's proxy terminates TLS in front of it.
 */
export function renderMainConfig(input: MainConfigInput): string {
  const { httpPort } = input;
  if (httpPort !== undefined && (!Number.isInteger(httpPort) || httpPort < 1 || httpPort > 65535)) {
    throw new TypeError(`rendering prosody's configuration: httpPort is ${JSON.stringify(httpPort)}, not a port`);
  }
  const modules = input.modules.includes("admin_shell") ? [...input.modules] : [...input.modules, "admin_shell"];
  const lines = [
    "-- Rendered by Coyote's xmppconf actuator (actuator.xmppconf.prosody). Do not edit: it is rewritten.",
    "-- One file per VirtualHost is included from conf.d/ at the end.",
    "",
  ];
  if (input.runAsRoot) lines.push("run_as_root = true");
  lines.push(
    `pidfile = ${luaString(input.pidFile)}`,
    `data_path = ${luaString(input.dataDir)}`,
    `log = { ${input.logLevel} = ${luaString(input.logFile)} }`,
    "",
    `interfaces = ${luaList(input.interfaces)}`,
    `c2s_ports = ${luaList(input.c2sPorts)}`,
    `s2s_ports = ${luaList(input.s2sPorts)}`,
    "c2s_direct_tls_ports = { }",
    "s2s_direct_tls_ports = { }",
    ...(httpPort === undefined ? ["http_ports = { }"] : [`http_ports = ${luaList([httpPort])}`, `http_interfaces = ${luaList([HTTP_INTERFACE])}`]),
    "https_ports = { }",
    "",
    // SCRAM only: the stored credentials are SCRAM keys, and PLAIN would hand the password over.
    'authentication = "internal_hashed"',
    `disable_sasl_mechanisms = ${luaList(DISABLED_SASL_MECHANISMS)}`,
    'storage = "internal"',
    // Accounts come from the specs only.
    "allow_registration = false",
    `c2s_require_encryption = ${String(input.requireEncryption)}`,
    `s2s_require_encryption = ${String(input.requireEncryption)}`,
    // A peer server proves its name with a valid certificate; dialback alone is not enough.
    `s2s_secure_auth = ${String(input.requireEncryption)}`,
    "",
    `modules_enabled = ${luaList(modules)}`,
    "",
    `Include ${luaString(join(input.configDir, HOSTS_DIR, `*${HOST_FILE_SUFFIX}`))}`,
    "",
  );
  return lines.join("\n");
}

const OWNER_LINE = /^-- coyote-owner: ([a-z0-9-]+)$/m;
// A VirtualHost, or a component (a group chat service) the file defines: both are hosts to Prosody.
const VIRTUAL_HOST_LINE = /^\s*(?:VirtualHost|Component)\s*\(?\s*["']([^"']+)["']/gm;

/** What a VirtualHost's file says besides its name and owner. */
export interface HostOptions {
  /** The SCRAM hash of the host's accounts (SHA-1 by default). */
  readonly hash?: ScramHash;
  /** The PEM (key, then chain) Prosody reads for the host, when it has one. */
  readonly certificate?: string;
  /** Whether the host has a group chat service, `conference.<domain>`. */
  readonly groupChat?: boolean;
  /**
   * File sharing (XEP-0363): an upload service `upload.<domain>` whose files are at most
   * `sizeLimitMb` MB (1 to {@link MAX_FILE_SIZE_LIMIT_MB}, default {@link DEFAULT_FILE_SIZE_LIMIT_MB}).
   */
  readonly fileSharing?: { readonly sizeLimitMb?: number; readonly httpsPort?: number };
}

/** The group chat service of a domain. */
export function groupChatHost(domain: string): string {
  return `conference.${domain}`;
}

/** The file sharing (HTTP upload) service of a domain, also the hostname its files are reached at. */
export function uploadHost(domain: string): string {
  return `upload.${domain}`;
}

/** The largest upload, in MB, when the spec names none. */
export const DEFAULT_FILE_SIZE_LIMIT_MB = 10;
/** The largest size limit a spec may ask for, in MB (as the spec's schema says). */
export const MAX_FILE_SIZE_LIMIT_MB = 100;
/** How long a shared file is kept, in seconds: a week, Prosody's own default. */
export const FILE_SHARE_EXPIRES_AFTER_SECONDS = 7 * 86400;

function fileShareLines(domain: string, sizeLimitMb: number, httpsPort: number): string[] {
  if (!Number.isInteger(sizeLimitMb) || sizeLimitMb < 1 || sizeLimitMb > MAX_FILE_SIZE_LIMIT_MB) {
    throw new TypeError(`rendering a prosody host file: the file size limit of ${domain} is ${JSON.stringify(sizeLimitMb)} MB, not a whole number from 1 to ${MAX_FILE_SIZE_LIMIT_MB}`);
  }
  if (!Number.isInteger(httpsPort) || httpsPort < 1 || httpsPort > 65535) {
    throw new TypeError(`rendering a prosody host file: the HTTPS port of ${domain}'s file sharing is ${JSON.stringify(httpsPort)}, not a port`);
  }
  const host = uploadHost(domain);
  // The address clients are given: snitch-proxy's HTTPS port, named unless it is the standard one.
  const origin = httpsPort === 443 ? `https://${host}` : `https://${host}:${String(httpsPort)}`;
  return [
    "",
    // Files are kept under data_path/<encoded upload host>/http_file_share/, Prosody's data folder.
    `Component ${luaString(host)} "http_file_share"`,
    `http_file_share_size_limit = ${sizeLimitMb * 1024 * 1024}`,
    `http_file_share_expires_after = ${FILE_SHARE_EXPIRES_AFTER_SECONDS}`,
    // Only the domain's own users upload, not those of the box's other domains.
    `http_file_share_access = ${luaList([domain])}`,
    `http_external_url = ${luaString(`${origin}/`)}`,
  ];
}

/**
 * Renders the file of one VirtualHost. Its `coyote-owner` line records the service that asked for
 * the domain: the file is the ownership record, so that a second service asking for the same
 * domain is refused and a deleted service's hosts are found again.
 *
 * `password_hash` tells the host's `internal_hashed` store which SCRAM hash its accounts hold.
 * Prosody reads one per host, so a host's accounts must all share it; SHA-1, Prosody's default,
 * is left unsaid, so that the files of the hosts made before SHA-256 stay byte for byte the same.
 * `ssl` names the host's certificate for c2s and s2s alike. A group chat service comes after it (a
 * `Component` section ends the VirtualHost's): only the domain's own users create rooms, and
 * rooms are hidden and for members unless their owner opens them. A file sharing service comes
 * last: only the domain's own users upload, files are kept a week, and their URLs are
 * `https://upload.<domain>/…`, which the box's proxy sends to Prosody's loopback HTTP port.
 * @param domain the VirtualHost.
 * @param serviceId the service that owns it.
 */
export function renderHostConfig(domain: string, serviceId: string, options: HostOptions = {}): string {
  // The service id is written into a comment line and the domain into a Lua string: both must be
  // what their schemas say, so that neither can end the comment or the string.
  if (!ServiceId.safeParse(serviceId).success) throw new TypeError(`rendering a prosody host file: not a service id: ${JSON.stringify(serviceId)}`);
  if (!DomainName.safeParse(domain).success) throw new TypeError(`rendering a prosody host file: not a domain name: ${JSON.stringify(domain)}`);
  const { hash = "SHA-1", certificate, groupChat = false, fileSharing } = options;
  // One PEM holds the key and the chain; LuaSec finds each in it.
  const ssl = certificate === undefined ? [] : [`ssl = { certificate = ${luaString(certificate)}; key = ${luaString(certificate)} }`];
  return [
    `-- Rendered by Coyote's xmppconf actuator for service ${serviceId}. Do not edit: it is rewritten or removed.`,
    `-- coyote-owner: ${serviceId}`,
    `VirtualHost ${luaString(domain)}`,
    ...(hash === "SHA-256" ? [`password_hash = ${luaString(hash)}`] : []),
    ...ssl,
    ...(groupChat
      ? [
          "",
          `Component ${luaString(groupChatHost(domain))} "muc"`,
          'restrict_room_creation = "local"',
          "muc_room_default_public = false",
          "muc_room_default_members_only = true",
        ]
      : []),
    ...(fileSharing === undefined ? [] : fileShareLines(domain, fileSharing.sizeLimitMb ?? DEFAULT_FILE_SIZE_LIMIT_MB, fileSharing.httpsPort ?? 443)),
    "",
  ].join("\n");
}

/** What a per-host file says. */
export interface ParsedHostFile {
  /** The service that owns it, or undefined for a file Coyote did not make. */
  readonly owner: string | undefined;
  /** The VirtualHosts and components it defines. */
  readonly hosts: readonly string[];
}

/** Reads the owner and the VirtualHosts (and components) of a file in `conf.d/`. */
export function parseHostFile(content: string): ParsedHostFile {
  const hosts = [...content.matchAll(VIRTUAL_HOST_LINE)].map((match) => match[1] ?? "");
  return { owner: OWNER_LINE.exec(content)?.[1], hosts };
}

/**
 * Renders an account of Prosody's `internal_hashed` store exactly as Prosody 0.12's datamanager
 * writes it (`return ` + util.serialization + `;\n`), keys in sorted order: the salt as raw bytes,
 * the keys in lowercase hex, no clear-text `password` field. A SHA-256 account has the same
 * fields with 32-byte keys; its host must say `password_hash = "SHA-256"` ({@link renderHostConfig}).
 */
export function renderAccount(credential: ScramCredential): string {
  return [
    "return {",
    `\t["iteration_count"] = ${credential.iterations};`,
    `\t["salt"] = ${luaString(credential.salt)};`,
    `\t["server_key"] = ${luaString(credential.serverKey.toString("hex"))};`,
    `\t["stored_key"] = ${luaString(credential.storedKey.toString("hex"))};`,
    "};",
    "",
  ].join("\n");
}

/**
 * Encodes a host or user name for a path in Prosody's data folder as its datamanager does: every
 * byte that is not an ASCII letter or digit becomes `%xx` in lowercase hex (`example.org` →
 * `example%2eorg`, `a-b` → `a%2db`).
 */
export function encodeDataPathPart(name: string): string {
  let out = "";
  for (const byte of Buffer.from(name, "utf8")) {
    const isAlnum = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
    out += isAlnum ? String.fromCharCode(byte) : `%${byte.toString(16).padStart(2, "0")}`;
  }
  return out;
}

/** Decodes a name encoded by {@link encodeDataPathPart} (or by Prosody). */
export function decodeDataPathPart(encoded: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const hex = encoded.slice(i + 1, i + 3);
    if (encoded[i] === "%" && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(encoded.charAt(i), "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** The folder of a host's accounts: `<data_path>/<encoded host>/accounts`. */
export function accountsDir(dataDir: string, domain: string): string {
  return join(dataDir, encodeDataPathPart(domain), "accounts");
}

/**
 * The file Prosody 0.12's `internal_hashed` authentication reads for a user:
 * `<data_path>/<encoded host>/accounts/<encoded user>.dat`.
 */
export function accountFile(dataDir: string, domain: string, username: string): string {
  return join(accountsDir(dataDir, domain), `${encodeDataPathPart(username)}.dat`);
}
