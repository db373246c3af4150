import { createHash } from "node:crypto";
import { chown, lstat, mkdir, readdir, readFile, rmdir, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ActuatorError, DirectoryCache, memoizeByIdentity, type Actuator, type ActuatorContext, type Plan, type Target } from "@coyote/actuator";
import { isPidAlive, MISSING_CREDENTIAL, readCredentials, removeStaleTempFiles, withCredentials, writeFileAtomic, type ServiceSpec } from "@coyote/spec";
import {
  accountsDir,
  decodeDataPathPart,
  DEFAULT_PROSODY_MODULES,
  encodeDataPathPart,
  HOST_FILE_SUFFIX,
  HOSTS_DIR,
  luaString,
  MAIN_CONFIG_FILE,
  parseHostFile,
  renderAccount,
  renderHostConfig,
  renderMainConfig,
  type MainConfigInput,
} from "./render.ts";
import { parseHostList, runCommand, summarize, type CommandResult } from "./prosodyctl.ts";
import { parseScram, passwordHashScheme, type ScramCredential, type ScramHash } from "./scram.ts";

/** How to reach and configure one Prosody. Every path, port and binary is named here. */
export interface XmppActuatorOptions {
  /** The state folder; the actuator keeps its bookkeeping in `<stateDir>/xmppconf/`. */
  readonly stateDir: string;
  /** Where `prosody.cfg.lua` and the per-host `conf.d/<domain>.cfg.lua` files live (`/etc/prosody`). */
  readonly configDir: string;
  /** Prosody's `data_path`, where the account files live (`/var/lib/prosody`). */
  readonly dataDir: string;
  /** Client-to-server ports (`[5222]` in production). */
  readonly c2sPorts: readonly number[];
  /** Server-to-server ports (`[5269]` in production). */
  readonly s2sPorts: readonly number[];
  /** The addresses to listen on (`["*", "::"]` in production, `["127.0.0.1"]` in tests). */
  readonly interfaces: readonly string[];
  /** Prosody's pid file (`/run/prosody/prosody.pid`): `commit` reloads only a running Prosody. */
  readonly pidFile: string;
  /** The file Prosody logs to (`/var/log/prosody/prosody.log`). */
  readonly logFile: string;
  /** The lowest level Prosody logs (default `info`). */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
  /** The prosodyctl binary (default `prosodyctl` on the PATH). */
  readonly prosodyctl?: string;
  /** The modules to load (default {@link DEFAULT_PROSODY_MODULES}); `admin_shell` is always added. */
  readonly modules?: readonly string[];
  /**
   * Whether clients and servers must use TLS (default true). Only tests that log in without TLS
   * on loopback turn it off.
   */
  readonly requireEncryption?: boolean;
  /** Prosody's `certificates` folder (`<host>.crt`/`<host>.key` or `<host>/fullchain.pem`), if any. */
  readonly certificatesDir?: string;
  /** Render `run_as_root = true`, for tests that run as root; production runs Prosody as its own user. */
  readonly runAsRoot?: boolean;
  /**
   * The owner given to the account files and folders the actuator writes. Production passes the
   * `prosody` user's uid and gid (the minion runs as root, Prosody does not, and account files are
   * mode 0640); without it they keep the writer's owner.
   */
  readonly fileOwner?: { readonly uid: number; readonly gid: number };
  /** How long one prosodyctl call may take before `commit` gives up (default 30 s). */
  readonly commandTimeoutMs?: number;
}

/** An account file as found on disk. */
export interface ObservedAccount {
  /** Its file name in the accounts folder (`<encoded user>.dat`). */
  readonly file: string;
  /** The user name, decoded from the file name. */
  readonly username: string;
  /** The file's text. */
  readonly content: string;
  /** Whether its owner and mode are what the actuator gives its files. */
  readonly metadataOk: boolean;
}

/** One file in `conf.d/`. */
export interface ObservedHostFile {
  /** The file name, e.g. `example.org.cfg.lua`. */
  readonly file: string;
  /** The file's text. */
  readonly content: string;
  /** The service named in its `coyote-owner` line, or undefined for a file Coyote did not make. */
  readonly owner: string | undefined;
  /** The VirtualHosts it defines. */
  readonly hosts: readonly string[];
}

/** What {@link XmppActuator.observe} saw. */
export interface XmppObserved {
  /** The main configuration file's text, or undefined when it is missing. */
  readonly mainConfig: string | undefined;
  /** The `conf.d/*.cfg.lua` files that matter to this service: those it owns and those that define one of its domains. */
  readonly hostFiles: readonly ObservedHostFile[];
  /**
   * The accounts, by domain, of every domain the service asks for or owns now (the accounts of
   * other services' domains are not read).
   */
  readonly accounts: ReadonlyMap<string, readonly ObservedAccount[]>;
  /** The hashes of the secrets the spec's users name, by secret name. */
  readonly credentials?: ReadonlyMap<string, string>;
}

/** One change the actuator makes. */
export type XmppStep =
  | { readonly kind: "write-main-config"; readonly content: string }
  | { readonly kind: "write-host"; readonly domain: string; readonly content: string }
  | { readonly kind: "close-sessions"; readonly jids: readonly string[] }
  | { readonly kind: "write-account"; readonly domain: string; readonly file: string; readonly content: string }
  | { readonly kind: "remove-account"; readonly domain: string; readonly file: string }
  | { readonly kind: "remove-host"; readonly domain: string }
  | { readonly kind: "reject"; readonly reason: string; readonly message: string };

/** The xmppconf actuator, with the paths a caller (or a test starting Prosody) needs. */
export interface XmppActuator extends Actuator<XmppObserved, XmppStep> {
  /** The main configuration file: `prosody --config <this>`. */
  readonly configFile: string;
  /** Whether the service has an `xmpp` section (only those get the `XmppReady` condition). */
  appliesTo(spec: ServiceSpec): boolean;
}

/** The actuator's id. */
export const XMPP_ACTUATOR_ID = "actuator.xmppconf.prosody";
/** The condition it reports on each service with an `xmpp` section. */
export const XMPP_CONDITION = "XmppReady";

const HOST_FILE_NAME = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)\.cfg\.lua$/;
const ACCOUNT_MODE = 0o640;
const DATA_DIR_MODE = 0o750;

/** The bookkeeping of `commit` in `<stateDir>/xmppconf/`. */
interface CommitState {
  /** The digest of the configuration Prosody was last made to load. */
  readonly configDigest?: string;
  /** The digest of each VirtualHost's file as Prosody last loaded it, by host. */
  readonly hosts?: Readonly<Record<string, string>>;
}

interface Problem {
  readonly reason: string;
  readonly message: string;
}

function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function checkPorts(name: string, ports: readonly number[]): void {
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`creating the xmpp actuator: ${name} holds ${port}, not a port`);
  }
}

/**
 * Makes the Prosody actuator (issue #3): one VirtualHost file per domain of every service that has
 * an `xmpp` section, owned by that service, and one account file per user of `xmpp.users` in
 * Prosody's `internal_hashed` store. Side-effect-free: nothing is read or written until the
 * minion calls it.
 *
 * Reload strategy. Account files are read by Prosody at every login (mod_auth_internal_hashed →
 * mod_storage_internal → datamanager.load, no cache), so adding, changing or removing a user
 * needs no reload; `commit` only closes the sessions of removed users and of users whose
 * password changed, as Prosody does itself on a password change. When the configuration on disk
 * differs from the one Prosody was last made to load, `commit` runs, through prosodyctl's admin
 * shell, `config:reload()` and then `host:activate` for every VirtualHost that is configured but
 * not active and `host:deactivate` for every active one no longer configured. Prosody 0.12's
 * reload (SIGHUP, `prosodyctl reload` or `config:reload()`) only re-reads the file, logging and
 * certificates: it neither starts nor stops VirtualHosts, which is why they are activated by
 * hand. No restart is needed, so other hosts' sessions are never dropped. Changes of the global
 * options (ports, interfaces, modules) do need a restart of Prosody, which only a changed
 * deployment causes.
 */
export function createXmppActuator(options: XmppActuatorOptions): XmppActuator {
  checkPorts("c2sPorts", options.c2sPorts);
  checkPorts("s2sPorts", options.s2sPorts);
  const configDir = resolve(options.configDir);
  const dataDir = resolve(options.dataDir);
  const hostsDir = join(configDir, HOSTS_DIR);
  const configFile = join(configDir, MAIN_CONFIG_FILE);
  const bookDir = join(resolve(options.stateDir), "xmppconf");
  const commitStateFile = join(bookDir, "commit.json");
  const closeJournal = join(bookDir, "close-sessions.json");
  const prosodyctl = options.prosodyctl ?? "prosodyctl";
  const timeoutMs = options.commandTimeoutMs ?? 30_000;
  const owner = options.fileOwner;
  const mainInput: MainConfigInput = {
    configDir,
    dataDir,
    pidFile: resolve(options.pidFile),
    logFile: resolve(options.logFile),
    logLevel: options.logLevel ?? "info",
    interfaces: [...options.interfaces],
    c2sPorts: [...options.c2sPorts],
    s2sPorts: [...options.s2sPorts],
    modules: options.modules ?? DEFAULT_PROSODY_MODULES,
    requireEncryption: options.requireEncryption ?? true,
    certificatesDir: options.certificatesDir === undefined ? undefined : resolve(options.certificatesDir),
    runAsRoot: options.runAsRoot ?? false,
  };
  // Rendered once: it depends on the options only, and plan must stay cheap and pure.
  const mainConfig = renderMainConfig(mainInput);

  async function readText(path: string): Promise<string | undefined> {
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

  // Every service's observe needs every VirtualHost's owner; the cache re-reads only what changed.
  const hostFiles = new DirectoryCache<ObservedHostFile>(
    hostsDir,
    (file) => file.endsWith(HOST_FILE_SUFFIX) && !file.startsWith("."),
    (file, content) => ({ file, content, ...parseHostFile(content) }),
  );

  // Who owns which files, and which files define each VirtualHost (by the host or the file name).
  const hostIndex = memoizeByIdentity((files: ReadonlyMap<string, ObservedHostFile>) => {
    const byOwner = new Map<string, ObservedHostFile[]>();
    const definers = new Map<string, ObservedHostFile[]>();
    for (const file of files.values()) {
      if (file.owner !== undefined) byOwner.set(file.owner, [...(byOwner.get(file.owner) ?? []), file]);
      const named = HOST_FILE_NAME.exec(file.file)?.[1];
      for (const host of new Set(named === undefined ? file.hosts : [...file.hosts, named])) definers.set(host, [...(definers.get(host) ?? []), file]);
    }
    return { byOwner, definers };
  });

  async function readHostFiles(): Promise<ObservedHostFile[]> {
    return [...(await hostFiles.read()).values()];
  }

  async function readAccounts(domain: string): Promise<ObservedAccount[]> {
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

  /** Creates a folder (and its parents) and gives it the data owner, as Prosody would have. */
  async function ensureDataDir(path: string): Promise<void> {
    await mkdir(path, { recursive: true, mode: DATA_DIR_MODE });
    if (owner !== undefined) await chown(path, owner.uid, owner.gid);
  }

  async function removeFile(path: string): Promise<void> {
    try {
      await unlink(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async function removeDirIfEmpty(path: string): Promise<void> {
    try {
      await rmdir(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!isNotFound(error) && code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
    }
  }

  async function readJournal(): Promise<string[]> {
    const text = await readText(closeJournal);
    if (text === undefined) return [];
    try {
      const value = JSON.parse(text) as unknown;
      return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
    } catch {
      // A journal torn by a power loss only loses session closings, never credentials.
      return [];
    }
  }

  async function readCommitState(): Promise<CommitState> {
    const text = await readText(commitStateFile);
    if (text === undefined) return {};
    try {
      const value = JSON.parse(text) as { configDigest?: unknown; hosts?: unknown } | null;
      if (typeof value?.configDigest !== "string") return {};
      const hosts: Record<string, string> = {};
      if (typeof value.hosts === "object" && value.hosts !== null) {
        for (const [host, digest] of Object.entries(value.hosts)) if (typeof digest === "string") hosts[host] = digest;
      }
      return { configDigest: value.configDigest, hosts };
    } catch {
      // Unreadable bookkeeping only costs one extra reload.
      return {};
    }
  }

  /** A digest of everything Prosody reads as configuration: the main file and every host file. */
  async function configDigest(): Promise<{ digest: string; virtualHosts: Set<string>; hosts: Record<string, string> }> {
    const hash = createHash("sha256");
    hash.update(`${MAIN_CONFIG_FILE}\0${(await readText(configFile)) ?? "\0missing"}\0`);
    const virtualHosts = new Set<string>();
    const hosts: Record<string, string> = {};
    for (const file of await readHostFiles()) {
      hash.update(`${file.file}\0${file.content}\0`);
      const fileDigest = createHash("sha256").update(file.content).digest("hex");
      for (const host of file.hosts) {
        virtualHosts.add(host);
        hosts[host] = fileDigest;
      }
    }
    return { digest: hash.digest("hex"), virtualHosts, hosts };
  }

  async function prosodyPid(): Promise<number | undefined> {
    const text = await readText(resolve(options.pidFile));
    const pid = Number(text?.trim());
    return Number.isInteger(pid) && pid > 0 && isPidAlive(pid) ? pid : undefined;
  }

  async function shell(line: string, context: ActuatorContext): Promise<CommandResult> {
    const signal = AbortSignal.any([context.signal, AbortSignal.timeout(timeoutMs)]);
    let result: CommandResult;
    try {
      result = await runCommand(prosodyctl, ["--config", configFile, "shell", line], signal);
    } catch (error) {
      throw new ActuatorError("ReloadFailed", `committing xmpp: running ${prosodyctl} shell ${line}: ${errorText(error)}`, { cause: error });
    }
    // prosodyctl's exit code is the number of commands that answered with an error.
    if (result.code !== 0) throw new ActuatorError("ReloadFailed", `committing xmpp: ${prosodyctl} shell ${line}: ${summarize(result)}`);
    return result;
  }

  return {
    id: XMPP_ACTUATOR_ID,
    condition: XMPP_CONDITION,
    configFile,

    appliesTo(spec: ServiceSpec): boolean {
      return spec.xmpp !== undefined;
    },

    async observe(target: Target, context: ActuatorContext): Promise<XmppObserved> {
      // Only the files that matter to this service: those it owns and those that define (or are
      // named after) one of its domains. The index is built once per state of the folder, so a
      // resync of n services does not look at n files n times.
      const index = hostIndex(await hostFiles.read());
      const wantedDomains = target.spec?.xmpp === undefined ? [] : target.spec.domains.map((d) => d.name);
      const relevant = new Set<ObservedHostFile>(index.byOwner.get(target.id) ?? []);
      for (const domain of wantedDomains) for (const file of index.definers.get(domain) ?? []) relevant.add(file);
      const files = [...relevant].sort((a, b) => a.file.localeCompare(b.file));
      const domains = new Set<string>(wantedDomains);
      for (const file of files) {
        const domain = HOST_FILE_NAME.exec(file.file)?.[1];
        if (domain !== undefined && file.owner === target.id) domains.add(domain);
      }
      const accounts = new Map<string, ObservedAccount[]>();
      for (const domain of [...domains].sort()) accounts.set(domain, await readAccounts(domain));
      let credentials: ReadonlyMap<string, string> = new Map();
      if (target.spec !== undefined) {
        const read = await readCredentials(target.spec, (name) => context.store.readSecret(name));
        if (read.missing.length > 0) context.logger.warn({ serviceId: target.id, secrets: read.missing }, "xmpp credentials named by the spec are missing from secrets/");
        credentials = read.hashes;
      }
      return { mainConfig: await readText(configFile), hostFiles: files, accounts, credentials };
    },

    plan(target: Target, observed: XmppObserved): Plan<XmppStep> {
      const steps: XmppStep[] = [];
      const describe: string[] = [];
      const problems: Problem[] = [];
      const context = `planning xmpp for service ${target.id}`;
      // The spec with its credentials read from secrets/ (observe).
      const spec = target.spec === undefined ? undefined : withCredentials(target.spec, observed.credentials ?? new Map());
      const wanted = spec?.xmpp === undefined ? [] : spec.domains.map((d) => d.name);

      // Which files this service owns, and every file that defines each VirtualHost today.
      const owned = new Map<string, ObservedHostFile>();
      for (const file of observed.hostFiles) {
        const domain = HOST_FILE_NAME.exec(file.file)?.[1];
        if (domain !== undefined && file.owner === target.id) owned.set(domain, file);
      }
      const definers = new Map<string, ObservedHostFile[]>();
      for (const file of observed.hostFiles) {
        const named = HOST_FILE_NAME.exec(file.file)?.[1];
        for (const host of new Set(named === undefined ? file.hosts : [...file.hosts, named])) definers.set(host, [...(definers.get(host) ?? []), file]);
      }

      // The domains this service may serve: those no other file defines (or is named after). A
      // conflicting domain this service already owns is left as it is, not removed: a bad state
      // never wipes what works.
      const served: string[] = [];
      for (const domain of wanted) {
        const ownFile = `${domain}${HOST_FILE_SUFFIX}`;
        const holder = (definers.get(domain) ?? []).find((file) => !(file.file === ownFile && file.owner === target.id));
        if (holder !== undefined) {
          const who = holder.owner === undefined ? `a file coyote did not make (${HOSTS_DIR}/${holder.file})` : `service ${holder.owner}`;
          problems.push({ reason: "DomainTaken", message: `domain ${domain} is already an xmpp host of ${who}` });
          continue;
        }
        served.push(domain);
      }

      if (served.length > 0 && observed.mainConfig !== mainConfig) {
        steps.push({ kind: "write-main-config", content: mainConfig });
        describe.push(`write ${MAIN_CONFIG_FILE}`);
      }
      // Desired accounts of the served domains; a user whose hash is unusable keeps whatever
      // account it has (a bad spec never wipes good state) and is reported.
      const desired = new Map<string, Map<string, ScramCredential>>();
      const keep = new Set<string>();
      const seen = new Map<string, string>();
      for (const domain of served) desired.set(domain, new Map());
      for (const { passwordHash = MISSING_CREDENTIAL, ...user } of spec?.xmpp?.users ?? []) {
        const jid = `${user.username}@${user.domain}`;
        const accounts = desired.get(user.domain);
        if (accounts === undefined) continue; // its domain is taken: already reported
        const earlier = seen.get(jid);
        if (earlier !== undefined) {
          if (earlier !== passwordHash) {
            problems.push({ reason: "DuplicateUser", message: `user ${jid} is listed twice with different password hashes` });
            accounts.delete(user.username);
            keep.add(jid);
          }
          continue;
        }
        seen.set(jid, passwordHash);
        const parsed = parseScram(passwordHash);
        if (!parsed.ok) {
          keep.add(jid);
          if (parsed.problem === "unsupported-scheme") {
            problems.push({
              reason: "UnsupportedPasswordHash",
              message: `user ${jid} has a ${passwordHashScheme(passwordHash)} password hash; xmpp needs {SCRAM-SHA-1} or {SCRAM-SHA-256} credentials in dovecot's format`,
            });
          } else {
            problems.push({
              reason: "InvalidPasswordHash",
              message: `user ${jid} has a malformed ${passwordHashScheme(passwordHash)} hash (expected <iterations 4096-1000000>,<base64 salt>,<base64 StoredKey>,<base64 ServerKey>)`,
            });
          }
          continue;
        }
        accounts.set(user.username, parsed.credential);
      }

      // Each host verifies one SCRAM hash (its password_hash), so its accounts must share one. A
      // host whose users mix them is left exactly as it is: switching it either way would lock
      // out the users of the other scheme, whose passwords are not known.
      const rendered = new Map<string, Map<string, string>>();
      for (const domain of served) {
        const accounts = desired.get(domain) ?? new Map<string, ScramCredential>();
        const byHash = new Map<ScramHash, string[]>();
        for (const [username, credential] of accounts) byHash.set(credential.hash, [...(byHash.get(credential.hash) ?? []), username]);
        if (byHash.size > 1) {
          const mix = [...byHash].sort(([a], [b]) => a.localeCompare(b)).map(([hash, users]) => `{SCRAM-${hash}} (${users.sort().join(", ")})`);
          problems.push({
            reason: "MixedPasswordHashes",
            message: `host ${domain} has users with ${mix.join(" and ")} credentials; prosody verifies one scheme per host, so all of its users need the same one`,
          });
          for (const username of accounts.keys()) keep.add(`${username}@${domain}`);
          rendered.set(domain, new Map());
          continue;
        }
        const [hash = "SHA-1"] = byHash.keys();
        const content = renderHostConfig(domain, target.id, hash);
        if (owned.get(domain)?.content !== content) {
          steps.push({ kind: "write-host", domain, content });
          describe.push(`${owned.has(domain) ? "rewrite" : "add"} VirtualHost ${domain}`);
        }
        rendered.set(domain, new Map([...accounts].map(([username, credential]) => [username, renderAccount(credential)])));
      }

      const writes: XmppStep[] = [];
      const removals: XmppStep[] = [];
      const close: string[] = [];
      for (const domain of served) {
        const want = rendered.get(domain) ?? new Map<string, string>();
        const have = new Map((observed.accounts.get(domain) ?? []).map((a) => [a.username, a]));
        for (const [username, content] of want) {
          const existing = have.get(username);
          if (existing?.content === content && existing.metadataOk) continue;
          // A changed credential ends the user's sessions, as a password change in Prosody does.
          if (existing !== undefined && existing.content !== content) close.push(`${username}@${domain}`);
          writes.push({ kind: "write-account", domain, file: `${encodeDataPathPart(username)}.dat`, content });
          describe.push(`${existing === undefined ? "add" : "update"} account ${username}@${domain}`);
        }
        for (const account of have.values()) {
          if (want.has(account.username) || keep.has(`${account.username}@${domain}`)) continue;
          close.push(`${account.username}@${domain}`);
          removals.push({ kind: "remove-account", domain, file: account.file });
          describe.push(`remove account ${account.username}@${domain}`);
        }
      }
      // Domains this service owns but no longer serves: their accounts first, the host file (the
      // ownership record) last, so that an interrupted removal is found and finished next time.
      const dropped = [...owned.keys()].filter((domain) => !wanted.includes(domain)).sort();
      for (const domain of dropped) {
        for (const account of observed.accounts.get(domain) ?? []) {
          removals.push({ kind: "remove-account", domain, file: account.file });
          describe.push(`remove account ${account.username}@${domain}`);
        }
      }
      if (close.length > 0) {
        steps.push({ kind: "close-sessions", jids: close.sort() });
        describe.push(`close the sessions of ${close.join(", ")}`);
      }
      steps.push(...writes, ...removals);
      for (const domain of dropped) {
        steps.push({ kind: "remove-host", domain });
        describe.push(`remove VirtualHost ${domain}`);
      }

      const first = problems[0];
      if (first !== undefined) {
        const message = `${context}: ${problems.map((p) => p.message).join("; ")}`;
        // With nothing else to do the plan fails now; otherwise the rest is applied first and the
        // last step reports the problems, so that one bad user does not hold back the others.
        if (steps.length === 0) throw new ActuatorError(first.reason, message, { terminal: true });
        steps.push({ kind: "reject", reason: first.reason, message });
        describe.push(`report: ${problems.map((p) => p.message).join("; ")}`);
      }
      return { steps, describe };
    },

    async apply(plan: Plan<XmppStep>, target: Target, context: ActuatorContext): Promise<void> {
      const step = (what: string, error: unknown) =>
        error instanceof ActuatorError ? error : new ActuatorError("ApplyFailed", `applying xmpp for service ${target.id}: ${what}: ${errorText(error)}`, { cause: error });
      const cleaned = new Set<string>();
      const clean = async (dir: string) => {
        if (cleaned.has(dir)) return;
        cleaned.add(dir);
        await removeStaleTempFiles(dir);
      };
      for (const s of plan.steps) {
        switch (s.kind) {
          case "write-main-config":
            try {
              await mkdir(hostsDir, { recursive: true, mode: 0o755 });
              await ensureDataDir(dataDir);
              await writeFileAtomic(configFile, s.content, { mode: 0o644 });
            } catch (error) {
              throw step(`writing ${configFile}`, error);
            }
            break;
          case "write-host": {
            const path = join(hostsDir, `${s.domain}${HOST_FILE_SUFFIX}`);
            try {
              await mkdir(hostsDir, { recursive: true, mode: 0o755 });
              await clean(hostsDir);
              await writeFileAtomic(path, s.content, { mode: 0o644 });
            } catch (error) {
              throw step(`writing ${path}`, error);
            }
            break;
          }
          case "close-sessions":
            // Journaled before the accounts change, so that a kill in between still closes them.
            try {
              const pending = new Set([...(await readJournal()), ...s.jids]);
              await mkdir(bookDir, { recursive: true, mode: 0o700 });
              await writeFileAtomic(closeJournal, `${JSON.stringify([...pending].sort())}\n`, { mode: 0o600 });
            } catch (error) {
              throw step(`writing ${closeJournal}`, error);
            }
            break;
          case "write-account": {
            const dir = accountsDir(dataDir, s.domain);
            const path = join(dir, s.file);
            try {
              await ensureDataDir(dataDir);
              await ensureDataDir(join(dataDir, encodeDataPathPart(s.domain)));
              await ensureDataDir(dir);
              await clean(dir);
              await writeFileAtomic(path, s.content, { mode: ACCOUNT_MODE });
              if (owner !== undefined) await chown(path, owner.uid, owner.gid);
            } catch (error) {
              throw step(`writing ${path}`, error);
            }
            break;
          }
          case "remove-account": {
            const path = join(accountsDir(dataDir, s.domain), s.file);
            try {
              await removeFile(path);
            } catch (error) {
              throw step(`removing ${path}`, error);
            }
            break;
          }
          case "remove-host": {
            const path = join(hostsDir, `${s.domain}${HOST_FILE_SUFFIX}`);
            try {
              // Only what we made: the accounts folder and the host's folder if nothing else
              // (rosters, archives Prosody keeps) is left in them.
              const dir = accountsDir(dataDir, s.domain);
              await removeStaleTempFiles(dir, { all: true });
              await removeDirIfEmpty(dir);
              await removeDirIfEmpty(join(dataDir, encodeDataPathPart(s.domain)));
              await removeFile(path);
            } catch (error) {
              throw step(`removing ${path}`, error);
            }
            break;
          }
          case "reject":
            throw new ActuatorError(s.reason, s.message, { terminal: true });
        }
      }
      context.logger.debug({ serviceId: target.id, steps: plan.describe }, "xmpp changes applied");
    },

    async commit(context: ActuatorContext): Promise<void> {
      const { digest, virtualHosts, hosts } = await configDigest();
      const state = await readCommitState();
      const pending = await readJournal();
      if (state.configDigest === digest && pending.length === 0) return;

      const pid = await prosodyPid();
      if (pid === undefined) {
        // Prosody reads the configuration as it is when it starts, and has no session to close.
        context.logger.info({ pidFile: options.pidFile }, "prosody is not running: nothing to reload");
      } else {
        if (state.configDigest !== digest) {
          await shell("config:reload()", context);
          const active = new Set(parseHostList((await shell("host:list()", context)).stdout));
          const activate = [...virtualHosts].filter((h) => !active.has(h)).sort();
          const deactivate = [...active].filter((h) => !virtualHosts.has(h)).sort();
          for (const host of activate) await shell(`host:activate(${luaString(host)})`, context);
          for (const host of deactivate) await shell(`host:deactivate(${luaString(host)})`, context);
          // internal_hashed reads password_hash once, when it is loaded: a running host whose file
          // changed (its accounts moved to another SCRAM hash) loads it again to verify the new ones.
          const changed = [...virtualHosts].filter((h) => active.has(h) && state.hosts?.[h] !== hosts[h]).sort();
          for (const host of changed) await shell(`module:reload("auth_internal_hashed", ${luaString(host)})`, context);
          context.logger.info({ pid, activated: activate, deactivated: deactivate, reloadedAuth: changed }, "prosody configuration reloaded");
        }
        // A batch of a few hundred closings per call keeps the admin shell's input line short.
        for (let i = 0; i < pending.length; i += 200) {
          const batch = pending.slice(i, i + 200);
          await shell(batch.map((jid) => `c2s:close(${luaString(jid)}, "Account changed")`).join("; "), context);
        }
        if (pending.length > 0) context.logger.info({ pid, jids: pending }, "closed the sessions of removed or changed xmpp accounts");
      }
      try {
        await mkdir(bookDir, { recursive: true, mode: 0o700 });
        await writeFileAtomic(commitStateFile, `${JSON.stringify({ configDigest: digest, hosts } satisfies CommitState)}\n`, { mode: 0o600 });
        if (pending.length > 0) await removeFile(closeJournal);
      } catch (error) {
        throw new ActuatorError("CommitFailed", `committing xmpp: writing ${bookDir}: ${errorText(error)}`, { cause: error });
      }
    },
  };
}
