/** The public shapes of the xmppconf actuator: its options, what it observes, the steps it plans. */
import type { Actuator } from "@coyote/actuator";
import type { ServiceSpec } from "@coyote/spec";

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
  /**
   * The loopback port of Prosody's HTTP server, which serves file sharing to the box's proxy
   * (the server spec's `xmpp.httpPort`, default 5280). Prosody opens it only while some service
   * shares files.
   */
  readonly httpPort?: number;
  /** Prosody's pid file (`/run/prosody/prosody.pid`): `commit` reloads only a running Prosody. */
  readonly pidFile: string;
  /** The file Prosody logs to (`/var/log/prosody/prosody.log`), or `*console` for its standard output. */
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
  /**
   * Where the certificates of the box's names are issued, one PEM per name holding the key and then
   * the chain (`<host>.pem`, `certificateFileName`): snickers' `proxy/certs/` by default.
   */
  readonly certificateSource?: string;
  /**
   * Prosody's own copies of its VirtualHosts' certificates, `<domain>.pem` (mode 0600, owned by
   * {@link XmppActuatorOptions.fileOwner}): the source folder is the proxy's and stays closed to
   * Prosody. `<configDir>/../certs` by default.
   */
  readonly certificatesDir?: string;
  /**
   * Whether each service's `XmppReady` waits for the running Prosody to serve its VirtualHosts
   * (default false: the condition then means "configured", for a box whose Prosody nobody runs).
   */
  readonly verifyProsody?: boolean;
  /** Render `run_as_root = true`, for tests that run as root; production runs Prosody as its own user. */
  readonly runAsRoot?: boolean;
  /**
   * The user Prosody runs as, when it is not the writer's: the `prosody` user's uid and gid when
   * the minion runs as root ({@link prosodyFileOwner}). Its data folder and account files are given
   * to it, its certificate copies too (0600), and its configuration to its group (0640 in 0750
   * folders); the state folder lets its group pass through (0710) without listing it. Without it
   * every file keeps the writer's owner.
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
  /**
   * The certificates of the domains the service asks for or owns, by domain: the issued PEM
   * (undefined while none is issued) and Prosody's copy (undefined when missing), with whether
   * the copy has the owner and mode the actuator gives.
   */
  readonly certificates?: ReadonlyMap<string, ObservedCertificate>;
  /**
   * What the running Prosody serves, when the actuator verifies it: `down` says why it does not
   * run (undefined when it does), `hosts` the VirtualHosts it has activated.
   */
  readonly live?: { readonly down: string | undefined; readonly hosts: ReadonlySet<string> };
  /**
   * Whether Prosody's folders under the state folder, and the state folder's pass-through, have
   * the owner and modes the actuator gives them (always true when Prosody runs as the writer).
   */
  readonly foldersShared?: boolean;
}

/** One domain's certificate as observed. */
export interface ObservedCertificate {
  /** The issued PEM (key and chain), or undefined while none is issued. */
  readonly issued: string | undefined;
  /** Prosody's copy, or undefined when missing. */
  readonly copy: string | undefined;
  /** Whether the copy has the owner and mode the actuator gives its key files. */
  readonly copyMetadataOk: boolean;
}

/** One change the actuator makes. */
export type XmppStep =
  | { readonly kind: "write-main-config"; readonly content: string }
  | { readonly kind: "write-host"; readonly domain: string; readonly content: string }
  | { readonly kind: "close-sessions"; readonly jids: readonly string[] }
  | { readonly kind: "write-account"; readonly domain: string; readonly file: string; readonly content: string }
  | { readonly kind: "remove-account"; readonly domain: string; readonly file: string }
  | { readonly kind: "remove-host"; readonly domain: string }
  /** Prosody's folders (and the state folder's pass-through) are given to its group again. */
  | { readonly kind: "share-folders" }
  | { readonly kind: "write-certificate"; readonly domain: string; readonly content: string }
  | { readonly kind: "remove-certificate"; readonly domain: string }
  /** Prosody does not serve the service yet: the apply asks to be called again after `afterMs`. */
  | { readonly kind: "await-prosody"; readonly reason: "ProsodyDown" | "CertificateMissing" | "XmppPending"; readonly message: string; readonly afterMs: number };

/** The xmppconf actuator, with the paths a caller (or a test starting Prosody) needs. */
export interface XmppActuator extends Actuator<XmppObserved, XmppStep> {
  /** The main configuration file: `prosody --config <this>`. */
  readonly configFile: string;
  /** Whether the service has an `xmpp` section (only those get the `XmppReady` condition). */
  appliesTo(spec: ServiceSpec): boolean;
}
