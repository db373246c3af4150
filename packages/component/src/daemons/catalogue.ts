/**
 * The box's daemons in one catalogue: what each runs, where its configuration is, how it is
 * reloaded, how its readiness is checked and how it is stopped. `coyote up` supervises them from
 * this data ({@link DaemonSupervisor}), and the production installer renders its systemd units
 * from the same entries, so the two ways the box runs cannot drift apart.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { findExecutable, proxyRuntimePaths } from "@coyote/spec";
import { opendkim } from "./opendkim.ts";
import type { PassageUser } from "./passage.ts";
import { bannerProbe, commandProbe, type ProbeResult } from "./probes.ts";

/** The daemons the box runs, in start order: DNS first (mail and XMPP are found through it). */
export const DAEMON_NAMES = ["knot", "opendkim", "postfix", "dovecot", "prosody"] as const;

/**
 * The uid that owns the mailboxes (Postfix's virtual delivery writes, Dovecot's IMAP processes
 * read): a number without a system user, so that no other program of the machine runs as it.
 */
export const MAILBOX_OWNER_UID = 5000;

/** The name of one of the box's daemons. */
export type DaemonName = (typeof DAEMON_NAMES)[number];

/**
 * Where each daemon's files are under the state folder (the embedded layout of `coyote up`). The
 * minion's actuators write these configurations; the supervisor only reads them.
 */
export interface DaemonPaths {
  /** The state folder. */
  readonly stateDir: string;
  /** `run/`: pid files and sockets. */
  readonly runDir: string;
  /** `logs/`: one `<daemon>.log` each. */
  readonly logsDir: string;
  /** Knot's configuration, written by dnsconf with the `knot` backend. */
  readonly knotConf: string;
  /** Postfix's instance folder (`main.cf`, `master.cf`, maps), written by mailconf. */
  readonly postfixConfigDir: string;
  /** Dovecot's configuration. */
  readonly dovecotConf: string;
  /** Prosody's main configuration, written by xmppconf. */
  readonly prosodyConf: string;
  /** Prosody's per-VirtualHost files, written by xmppconf. */
  readonly prosodyHostsDir: string;
}

/** The layout of the daemons' files in a state folder. */
export function daemonPaths(stateDir: string): DaemonPaths {
  return {
    stateDir,
    runDir: join(stateDir, "run"),
    logsDir: join(stateDir, "logs"),
    knotConf: join(stateDir, "dns", "knot", "knot.conf"),
    postfixConfigDir: join(stateDir, "mail", "postfix", "conf"),
    dovecotConf: join(stateDir, "mail", "dovecot", "dovecot.conf"),
    prosodyConf: join(stateDir, "xmpp", "prosody", "prosody.cfg.lua"),
    prosodyHostsDir: join(stateDir, "xmpp", "prosody", "conf.d"),
  };
}

/** How a running daemon is made to load a changed configuration without a restart. */
export type ReloadAction =
  /** A signal to the daemon's main process (systemd: `ExecReload=kill -HUP $MAINPID`). */
  | { readonly kind: "signal"; readonly signal: NodeJS.Signals }
  /** A control command, run with the catalogue's tool and these arguments. */
  | { readonly kind: "command"; readonly tool: string; readonly args: (paths: DaemonPaths) => readonly string[] };

/** What a readiness check is given. */
export interface ProbeContext {
  /** The daemon's files. */
  readonly paths: DaemonPaths;
  /** Finds a tool of the daemon's package (`knotc`, `doveadm`, ...) by name. */
  readonly tool: (name: string) => string | undefined;
  /** How long the check may take. */
  readonly timeoutMs: number;
}

/** One daemon of the box. */
export interface DaemonDefinition {
  /** Its name: its log is `logs/<name>.log`. */
  readonly name: DaemonName;
  /** One line on what it does for the box. */
  readonly summary: string;
  /** The Debian packages that bring it. */
  readonly packages: readonly string[];
  /** The program run in the foreground, found by name in {@link DAEMON_PROGRAM_DIRS}. */
  readonly program: string;
  /** Other programs of its package the checks and reloads use. */
  readonly tools: readonly string[];
  /**
   * The user it runs as when started by root (systemd's `User=`); undefined when it starts as root
   * and drops its privileges itself (Postfix and Dovecot must: they switch per process).
   */
  readonly user?: string;
  /**
   * The users its processes run as when it is started by root, who must pass through the state
   * folder to reach their own folders (`grantPassage`); empty when it runs as the supervisor's user.
   */
  readonly passage: readonly PassageUser[];
  /**
   * Why it cannot run without root, when it cannot: the supervisor then does not try (it would only
   * die and be restarted forever) and says so.
   */
  readonly needsRoot?: string;
  /**
   * Folders outside the state folder it writes to, when they exist (its systemd unit's sandbox
   * leaves them writable; Debian's packages make them).
   */
  readonly writes?: readonly string[];
  /** The file whose presence means "configured": the daemon is not started without it. */
  readonly configFile: (paths: DaemonPaths) => string;
  /** The files and folders whose change calls for a reload (folders: their files, one level). */
  readonly watch: (paths: DaemonPaths) => readonly string[];
  /** The arguments that run it in the foreground, in its own process group. */
  readonly args: (paths: DaemonPaths) => readonly string[];
  /** A step run before each start (systemd's `ExecStartPre=`): a tool and its arguments. */
  readonly prepare?: { readonly tool: string; readonly args: (paths: DaemonPaths) => readonly string[] };
  /** How a changed configuration is loaded. */
  readonly reload: ReloadAction;
  /** A real check that it serves: a greeting on its port, or its own control tool answering. */
  readonly ready: (context: ProbeContext) => Promise<ProbeResult>;
  /** How it is stopped: this signal to its process group, then SIGKILL after `graceMs`. */
  readonly stop: { readonly signal: NodeJS.Signals; readonly graceMs: number };
}

/** Where daemon programs are looked for; Postfix's `master` lives in its own folder. */
export const DAEMON_PROGRAM_DIRS: readonly string[] = ["/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin", "/sbin", "/bin"];

/** The absolute path of an executable program in `dirs`, or undefined. */
export function findDaemonProgram(name: string, dirs: readonly string[] = DAEMON_PROGRAM_DIRS): string | undefined {
  return findExecutable(name, dirs);
}

/**
 * The SMTP listener of a Postfix `master.cf`: the first `inet` service run by `smtpd`. A listener
 * on every interface (`smtp`, `0.0.0.0:25`, `[::]:25`) is probed on loopback.
 * @returns undefined when there is none or it names a service instead of a port.
 */
export function postfixSmtpListener(masterCf: string): { host: string; port: number } | undefined {
  for (const raw of masterCf.split("\n")) {
    const fields = raw.trim().split(/\s+/);
    if (raw.startsWith("#") || /^\s/.test(raw) || fields[1] !== "inet" || fields[7] !== "smtpd") continue;
    const match = /^(?:(\[[0-9a-fA-F:.]+\]|[0-9A-Za-z.-]+):)?([0-9]{1,5})$/.exec(fields[0] ?? "");
    const port = Number(match?.[2]);
    if (!match || port < 1 || port > 65535) return undefined;
    const host = (match[1] ?? "127.0.0.1").replace(/^\[|\]$/g, "");
    return { host: host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host, port };
  }
  return undefined;
}

/** A readiness check that runs one of the daemon's own tools and passes when it exits with 0. */
function toolProbe(tool: string, args: (paths: DaemonPaths) => readonly string[]): (context: ProbeContext) => Promise<ProbeResult> {
  return (context) => {
    const found = context.tool(tool);
    return found === undefined ? Promise.resolve({ ok: false, why: `${tool} is not installed` }) : commandProbe(found, args(context.paths), context.timeoutMs);
  };
}

/** Knot DNS, the authoritative server when the server spec's `dns.backend` is `knot`. */
const knot: DaemonDefinition = {
  name: "knot",
  summary: "authoritative DNS (Knot) for the box's zones",
  packages: ["knot", "knot-dnsutils"],
  program: "knotd",
  tools: ["knotc"],
  // Started by root, it stays root unless knot.conf names a user.
  passage: [],
  configFile: (p) => p.knotConf,
  watch: (p) => [p.knotConf],
  args: (p) => ["-c", p.knotConf],
  // knotc reloads the configuration and the zones through the control socket knot.conf names.
  reload: { kind: "command", tool: "knotc", args: (p) => ["-c", p.knotConf, "reload"] },
  ready: toolProbe("knotc", (p) => ["-c", p.knotConf, "-t", "2", "status"]),
  stop: { signal: "SIGTERM", graceMs: 10_000 },
};

/** Postfix, SMTP in and out, as an instance of its own (`master -c DIR`). */
const postfix: DaemonDefinition = {
  name: "postfix",
  summary: "SMTP (Postfix) for the hosted mail domains",
  packages: ["postfix"],
  // The master itself, not `postfix start-fg`: start-fg keeps a shell between us and the master
  // unless it runs as pid 1. `-s` keeps stdout open so that `maillog_file = /dev/stdout` logs to
  // logs/postfix.log.
  program: "master",
  tools: ["postfix"],
  // Its mail_owner (queue, data folder, Dovecot's auth socket) and the mailboxes' owner, as which
  // its virtual delivery agent writes.
  passage: ["postfix", MAILBOX_OWNER_UID],
  needsRoot: 'the master refuses any other user ("fatal: the master command is reserved for the superuser")',
  configFile: (p) => join(p.postfixConfigDir, "main.cf"),
  // The certificates too: a renewed one reaches new smtpd processes after the reload.
  watch: (p) => [p.postfixConfigDir, proxyRuntimePaths(p.stateDir).certs],
  args: (p) => ["-c", p.postfixConfigDir, "-s"],
  // `postfix check` makes the queue's folders and sets their owners, as `postfix start` does.
  prepare: { tool: "postfix", args: (p) => ["-c", p.postfixConfigDir, "check"] },
  // On SIGHUP the master re-reads main.cf and master.cf; its idle children exit and are replaced.
  reload: { kind: "signal", signal: "SIGHUP" },
  ready: async (context) => {
    const masterCf = await readFile(join(context.paths.postfixConfigDir, "master.cf"), "utf8").catch(() => undefined);
    const listener = masterCf === undefined ? undefined : postfixSmtpListener(masterCf);
    if (listener === undefined) return { ok: false, why: `no smtpd inet listener in ${join(context.paths.postfixConfigDir, "master.cf")}` };
    return bannerProbe(listener.host, listener.port, /^220[ -]/, context.timeoutMs);
  },
  // SIGTERM is what `postfix stop` sends the master, which passes it on to its children.
  stop: { signal: "SIGTERM", graceMs: 10_000 },
};

/** Dovecot: authentication for Postfix and the mailboxes' IMAP. */
const dovecot: DaemonDefinition = {
  name: "dovecot",
  summary: "mailbox access and authentication (Dovecot)",
  packages: ["dovecot-core", "dovecot-imapd"],
  program: "dovecot",
  tools: ["doveadm"],
  // Its internal user (auth, the users file) and the mailboxes' owner (the IMAP processes); the
  // login processes are chrooted into its base_dir by root.
  passage: ["dovecot", MAILBOX_OWNER_UID],
  // Unless default_internal_user, default_login_user and their groups all name the running user.
  needsRoot: 'its master gives its sockets to its own users ("Fatal: fchown() failed for …/login: Operation not permitted")',
  // Its state_dir (the instances list), outside the configuration's reach.
  writes: ["/var/lib/dovecot"],
  configFile: (p) => p.dovecotConf,
  // The certificates too: Dovecot reads `ssl_cert = <file` again on a reload.
  watch: (p) => [p.dovecotConf, proxyRuntimePaths(p.stateDir).certs],
  args: (p) => ["-F", "-c", p.dovecotConf],
  // SIGHUP: the master re-reads its configuration and restarts its services' processes as needed.
  reload: { kind: "signal", signal: "SIGHUP" },
  // `doveadm service status` asks the running master through its socket in base_dir.
  ready: toolProbe("doveadm", (p) => ["-c", p.dovecotConf, "service", "status"]),
  stop: { signal: "SIGTERM", graceMs: 10_000 },
};

/** Prosody, the XMPP server. */
const prosody: DaemonDefinition = {
  name: "prosody",
  summary: "XMPP (Prosody) for the hosted chat domains",
  packages: ["prosody"],
  program: "prosody",
  tools: ["prosodyctl"],
  passage: ["prosody"],
  // Prosody refuses to run as root unless its configuration says run_as_root. Its files are in
  // xmpp/ (configuration, certificate copies, data), which xmppconf shares with its group.
  user: "prosody",
  configFile: (p) => p.prosodyConf,
  // The certificate copies too: a renewed one is loaded by the same reload.
  watch: (p) => [p.prosodyConf, p.prosodyHostsDir, join(dirname(dirname(p.prosodyConf)), "certs")],
  args: (p) => ["-F", "--config", p.prosodyConf],
  // SIGHUP re-reads the configuration and the certificates (TLS contexts are made anew); the
  // xmppconf actuator's commit activates new VirtualHosts.
  reload: { kind: "signal", signal: "SIGHUP" },
  // The admin shell answers only once Prosody is up and has loaded mod_admin_shell.
  ready: toolProbe("prosodyctl", (p) => ["--config", p.prosodyConf, "shell", "server:version()"]),
  stop: { signal: "SIGTERM", graceMs: 10_000 },
};

/**
 * The catalogue, in start order: the DKIM signer before Postfix, which holds mail back (a
 * temporary error) while the signer's milter does not answer.
 */
export const DAEMONS: readonly DaemonDefinition[] = [knot, opendkim, postfix, dovecot, prosody];

/** Finds a daemon's entry by name. */
export function findDaemon(name: string): DaemonDefinition | undefined {
  return DAEMONS.find((d) => d.name === name);
}
