/**
 * The files the actuator touches, in one place: the resolved layout of the configuration, data
 * and bookkeeping folders, and the small file helpers (reads that treat a missing file as
 * absent, removals that tolerate one, folders given Prosody's owner).
 */
import { execFileSync } from "node:child_process";
import { chmod, chown, lstat, mkdir, readdir, readFile, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { ActuatorError } from "@coyote/actuator";
import { holdsCapabilities, proxyRuntimePaths } from "@coyote/spec";
import { accountsDir, decodeDataPathPart, DEFAULT_PROSODY_MODULES, HOSTS_DIR, MAIN_CONFIG_FILE, type MainConfigInput } from "./render.ts";
import type { ObservedAccount, XmppActuatorOptions } from "./types.ts";

/** A host file's name, `<domain>.cfg.lua`; group 1 is the domain. */
export const HOST_FILE_NAME = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)\.cfg\.lua$/;
/** The mode of an account file: Prosody's group reads it, nobody else. */
export const ACCOUNT_MODE = 0o640;
/** The mode of a certificate copy (it holds the key): its owner, Prosody, reads it, nobody else. */
export const CERTIFICATE_MODE = 0o600;
/** The mode of a configuration file: Prosody's group reads it, nobody else. */
export const CONFIG_MODE = 0o640;
/** The mode of Prosody's folders: its group passes and lists, nobody else. */
export const PROSODY_DIR_MODE = 0o750;
const DATA_DIR_MODE = 0o750;
/** The largest certificate PEM read: a key and a long chain fit many times over. */
export const MAX_CERTIFICATE_BYTES = 64 * 1024;

/** The owner given to the files and folders the actuator writes, when the options name one. */
export type FileOwner = { readonly uid: number; readonly gid: number } | undefined;

/** Every path, binary and limit of one actuator, resolved once from its options. */
export interface XmppLayout {
  /** Where `prosody.cfg.lua` lives. */
  readonly configDir: string;
  /** Prosody's `data_path`. */
  readonly dataDir: string;
  /** The `conf.d/` folder of the per-host files. */
  readonly hostsDir: string;
  /** The main configuration file. */
  readonly configFile: string;
  /** The state folder. */
  readonly stateDir: string;
  /** The folder of Prosody's certificate copies, `<domain>.pem`. */
  readonly certificatesDir: string;
  /** Where the issued certificates are, `<host>.pem`. */
  readonly certificateSource: string;
  /** Whether `XmppReady` waits for the running Prosody. */
  readonly verify: boolean;
  /** The actuator's bookkeeping folder, `<stateDir>/xmppconf`. */
  readonly bookDir: string;
  /** The digests of the configuration Prosody last loaded. */
  readonly commitStateFile: string;
  /** The sessions still to be closed. */
  readonly closeJournal: string;
  /** Prosody's pid file. */
  readonly pidFile: string;
  /** The prosodyctl binary. */
  readonly prosodyctl: string;
  /** How long one prosodyctl call may take. */
  readonly timeoutMs: number;
  /** The owner of the files written, if any. */
  readonly owner: FileOwner;
  /** What the main configuration is rendered from. */
  readonly mainInput: MainConfigInput;
}

/** Prosody's loopback HTTP port when the options name none: the server spec's default `xmpp.httpPort`. */
export const DEFAULT_HTTP_PORT = 5280;

/** The `logFile` that sends Prosody's log to its standard output. */
export const CONSOLE_LOG = "*console";

function checkPorts(name: string, ports: readonly number[]): void {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`creating the xmpp actuator: ${name} holds ${port}, not a port`);
  }
}

/**
 * Resolves the options into the actuator's layout.
 * @throws TypeError when a port is not one.
 */
export function resolveLayout(options: XmppActuatorOptions): XmppLayout {
  checkPorts("c2sPorts", options.c2sPorts);
  checkPorts("s2sPorts", options.s2sPorts);
  if (options.httpPort !== undefined) checkPorts("httpPort", [options.httpPort]);
  const configDir = resolve(options.configDir);
  const dataDir = resolve(options.dataDir);
  const stateDir = resolve(options.stateDir);
  const bookDir = join(stateDir, "xmppconf");
  return {
    configDir,
    dataDir,
    hostsDir: join(configDir, HOSTS_DIR),
    configFile: join(configDir, MAIN_CONFIG_FILE),
    stateDir,
    certificatesDir: resolve(options.certificatesDir ?? join(dirname(configDir), "certs")),
    certificateSource: resolve(options.certificateSource ?? proxyRuntimePaths(stateDir).certs),
    verify: options.verifyProsody ?? false,
    bookDir,
    commitStateFile: join(bookDir, "commit.json"),
    closeJournal: join(bookDir, "close-sessions.json"),
    pidFile: resolve(options.pidFile),
    prosodyctl: options.prosodyctl ?? "prosodyctl",
    timeoutMs: options.commandTimeoutMs ?? 30_000,
    owner: options.fileOwner,
    mainInput: {
      configDir,
      dataDir,
      pidFile: resolve(options.pidFile),
      logFile: options.logFile === CONSOLE_LOG ? CONSOLE_LOG : resolve(options.logFile),
      logLevel: options.logLevel ?? "info",
      interfaces: [...options.interfaces],
      c2sPorts: [...options.c2sPorts],
      s2sPorts: [...options.s2sPorts],
      modules: options.modules ?? DEFAULT_PROSODY_MODULES,
      requireEncryption: options.requireEncryption ?? true,
      runAsRoot: options.runAsRoot ?? false,
      httpPort: options.httpPort ?? DEFAULT_HTTP_PORT,
    },
  };
}

/** Whether a file-system error says the file (or a folder on its path) does not exist. */
export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

import { errorText } from "@coyote/log";

export { errorText };

/**
 * A file's text, or undefined when it does not exist.
 * @throws ActuatorError ReadFailed for any other failure.
 */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw new ActuatorError("ReadFailed", `reading ${path}: ${errorText(error)}`, { cause: error });
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).sort();
  } catch (error) {
    if (isNotFound(error)) return [];
    throw new ActuatorError("ReadFailed", `listing ${path}: ${errorText(error)}`, { cause: error });
  }
}

/** The account files of one domain, with whether each has the owner and mode the actuator gives. */
export async function readAccounts(dataDir: string, domain: string, owner: FileOwner): Promise<ObservedAccount[]> {
  const dir = accountsDir(dataDir, domain);
  const accounts: ObservedAccount[] = [];
  for (const file of await listDir(dir)) {
    // Prosody's own scratch files end in `~`, ours in `.tmp`; neither is an account.
    if (!file.endsWith(".dat") || file.startsWith(".")) continue;
    const path = join(dir, file);
    const content = await readText(path);
    if (content === undefined) continue;
    const stats = await lstat(path);
    const metadataOk = (stats.mode & 0o777) === ACCOUNT_MODE && (owner === undefined || (stats.uid === owner.uid && stats.gid === owner.gid));
    accounts.push({ file, username: decodeDataPathPart(file.slice(0, -".dat".length)), content, metadataOk });
  }
  return accounts;
}

/**
 * A certificate PEM, or undefined when there is none; with whether it has the owner (when given)
 * and the mode of Prosody's copies.
 * @throws ActuatorError ReadFailed when it cannot be read or is larger than {@link MAX_CERTIFICATE_BYTES}.
 */
export async function readCertificate(path: string, owner: FileOwner): Promise<{ content: string; metadataOk: boolean } | undefined> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw new ActuatorError("ReadFailed", `reading ${path}: ${errorText(error)}`, { cause: error });
  }
  if (!stats.isFile() || stats.size > MAX_CERTIFICATE_BYTES) throw new ActuatorError("ReadFailed", `reading ${path}: not a certificate file of at most ${MAX_CERTIFICATE_BYTES} bytes`);
  const content = await readText(path);
  if (content === undefined) return undefined;
  const metadataOk = (stats.mode & 0o777) === CERTIFICATE_MODE && (owner === undefined || (stats.uid === owner.uid && stats.gid === owner.gid));
  return { content, metadataOk };
}

/** Creates a folder (and its parents) and gives it the data owner, as Prosody would have. */
export async function ensureDataDir(path: string, owner: FileOwner): Promise<void> {
  await mkdir(path, { recursive: true, mode: DATA_DIR_MODE });
  if (owner !== undefined) await chown(path, owner.uid, owner.gid);
}

/**
 * Gives a folder or file of Prosody's configuration to Prosody's group (0750 folders, 0640 files),
 * so that Prosody, running as its own user, reads it and cannot change it.
 */
export async function shareWithProsody(path: string, mode: number, owner: FileOwner): Promise<void> {
  if (owner === undefined) return;
  await chown(path, -1, owner.gid);
  await chmod(path, mode);
}

/**
 * The folders {@link XmppLayout} gives Prosody's group when Prosody runs as its own user: those
 * of its configuration and certificates under the state folder (a production path such as
 * /etc/prosody keeps the owner the installer gave it).
 */
export function sharedFolders(layout: XmppLayout): string[] {
  const { configDir, hostsDir, certificatesDir, stateDir } = layout;
  return [...new Set([dirname(configDir), configDir, hostsDir, dirname(certificatesDir), certificatesDir])].filter((dir) => dir.startsWith(`${stateDir}/`));
}

/**
 * Whether Prosody's shared folders are as the actuator makes them; true when Prosody runs as the
 * writer. A missing folder is not shared yet.
 */
export async function foldersShared(layout: XmppLayout): Promise<boolean> {
  const { owner } = layout;
  if (owner === undefined) return true;
  const has = async (path: string, mode: number) => {
    try {
      const s = await stat(path);
      return s.gid === owner.gid && (s.mode & 0o777) === mode;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new ActuatorError("ReadFailed", `reading ${path}: ${errorText(error)}`, { cause: error });
    }
  };
  const folders = sharedFolders(layout);
  if (folders.length === 0) return true;
  for (const dir of folders) if (!(await has(dir, PROSODY_DIR_MODE))) return false;
  return true;
}

/**
 * The owner to give Prosody's files ({@link XmppActuatorOptions.fileOwner}): the system user
 * Prosody runs as when the writer may give files away (root, or a production minion holding
 * CAP_CHOWN; the daemon supervisor and systemd start Prosody as that user), undefined otherwise
 * (Prosody then runs as the writer's own user).
 * @param user the system user (`prosody`, which Debian's package makes).
 * @throws ActuatorError NotInstalled when the writer is root and the user does not exist.
 */
export function prosodyFileOwner(user = "prosody"): FileOwner {
  if (!holdsCapabilities("CAP_CHOWN")) return undefined;
  let line = "";
  try {
    if (/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) line = execFileSync("getent", ["passwd", user], { encoding: "utf8", timeout: 5000 }).split("\n")[0] ?? "";
  } catch {
    // no such user: reported below
  }
  const [name, , uid, gid] = line.split(":");
  if (name !== user || !/^[0-9]+$/.test(uid ?? "") || !/^[0-9]+$/.test(gid ?? "")) {
    throw new ActuatorError("NotInstalled", `prosody's files: the system user ${JSON.stringify(user)} does not exist (Debian's prosody package makes it)`);
  }
  return { uid: Number(uid), gid: Number(gid) };
}

/** Removes a file; no error when it is already gone. */
export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** Removes a folder when it is empty; a folder that still holds something is left. */
export async function removeDirIfEmpty(path: string): Promise<void> {
  try {
    await rmdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (!isNotFound(error) && code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
  }
}
