import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ActuatorError, type Actuator } from "@coyote/actuator";
import { daemonPaths, findDaemonProgram, lookupUser, MAILBOX_OWNER_UID } from "@coyote/component";
import { createDnsActuator, type KnotBackendOptions } from "@coyote/actuator-dnsconf";
import { createMailActuator, type SignerAccount } from "@coyote/actuator-mailconf";
import { CONSOLE_LOG, createXmppActuator, prosodyFileOwner } from "@coyote/actuator-xmppconf";
import { createSnickersActuator } from "@coyote/actuator-snickers";
import { createBackendsActuator } from "@coyote/actuator-backends";
import { holdsCapabilities, type ServerSpec, type ServiceSpec } from "@coyote/spec";

/** Where the bundled actuators find the daemons they configure; tests and the installer change them. */
export interface BundledPaths {
  /** The Postfix binary; mail is reported unavailable when it is missing. */
  readonly postfix: string;
  /** Prosody's control program; XMPP is reported unavailable when it is missing. */
  readonly prosodyctl: string;
}

/** How the bundled actuators are made. */
export interface BundledOptions extends Partial<BundledPaths> {
  /**
   * Whether MailReady, XmppReady and DnsReady (with Knot) wait for the running daemons to serve
   * each service (true by default: the daemon supervisor of `coyote up`, or systemd, runs them).
   * False only where no daemon runs on purpose (tests and benchmarks of the configuration alone):
   * the conditions then mean "configured".
   */
  readonly verifyDaemons?: boolean;
}

/** The id of a system group, from `/etc/group`; undefined when there is none of that name. */
export function groupId(name: string, groupFile = "/etc/group"): number | undefined {
  let text: string;
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [group, , gid] = line.split(":");
    if (group === name && gid !== undefined && /^[0-9]+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

const DEFAULT_PATHS: BundledPaths = { postfix: "/usr/sbin/postfix", prosodyctl: "/usr/bin/prosodyctl" };

/**
 * Whom OpenDKIM runs as: when the minion may give files away (root, or CAP_CHOWN), the `opendkim` user with Postfix's group (its socket is then
 * Postfix's to open, and its key copies its own); otherwise whoever runs the box.
 * @returns undefined when not root, or when the user or the group is missing.
 */
export function signerAccount(): SignerAccount | undefined {
  if (!holdsCapabilities("CAP_CHOWN")) return undefined;
  const user = lookupUser("opendkim");
  const gid = groupId("postfix");
  return user === undefined || gid === undefined ? undefined : { user: "opendkim", uid: user.uid, group: "postfix", gid };
}

/**
 * An actuator that stands for one whose daemon is not installed: services that need it get its
 * condition False with the reason and the fix, instead of a green light for a feature nobody serves.
 */
export function unavailableActuator(id: string, condition: string, appliesTo: (spec: ServiceSpec) => boolean, message: string): Actuator<undefined, never> {
  return {
    id,
    condition,
    appliesTo,
    observe: () => Promise.resolve(undefined),
    plan(target) {
      if (target.spec && appliesTo(target.spec)) throw new ActuatorError("NotInstalled", message);
      return { steps: [], describe: [] };
    },
    apply: () => Promise.resolve(),
  };
}

/**
 * Where the Knot backend keeps its files: under the state folder, where the box's daemon
 * supervisor (and, in production, its systemd unit) starts Knot with the same `knot.conf`
 * ({@link daemonPaths}). Its control socket and run folder are the state folder's `run/`.
 */
export function knotPaths(stateDir: string, listen: readonly string[]): KnotBackendOptions {
  const paths = daemonPaths(stateDir);
  const knotDir = dirname(paths.knotConf);
  return {
    configDir: knotDir,
    zonesDir: join(knotDir, "zones"),
    databaseDir: join(knotDir, "db"),
    rundir: paths.runDir,
    controlSocket: join(paths.runDir, "knot.sock"),
    listen,
    knotc: "knotc",
  };
}

/**
 * The bundled actuators, in reconcile order (Caddy's `modules/standard/imports.go`): the one list
 * of what a stock minion runs. DNS comes after mail and XMPP because it publishes what they made
 * (the DKIM key of mailconf, the SRV records of the XMPP service); snickers comes after DNS
 * because it orders ACME certificates in its commit, which runs after DNS's commit has made the
 * service's names resolvable for the CA.
 */
export function bundledActuators(server: ServerSpec, stateDir: string, options: BundledOptions = {}): Actuator[] {
  const paths: BundledPaths = { ...DEFAULT_PATHS, ...options };
  const verifyDaemons = options.verifyDaemons ?? true;
  const mailDir = join(stateDir, "mail");
  const hasMail = (spec: ServiceSpec) => spec.mail !== undefined;
  const mail = existsSync(paths.postfix)
    ? createMailActuator({
        stateDir,
        postfix: {
          configDir: join(mailDir, "postfix", "conf"),
          queueDirectory: join(mailDir, "postfix", "queue"),
          dataDirectory: join(mailDir, "postfix", "data"),
          smtpListen: server.mail.smtpListen,
          submissionListen: server.mail.submissionListen,
          submissionsListen: server.mail.submissionsListen,
          postfixBin: paths.postfix,
          // The daemon supervisor gives Postfix's stdout to logs/postfix.log.
          maillogFile: "/dev/stdout",
        },
        // The users file in a folder of its own, readable by Dovecot's auth process through its
        // group: the Dovecot folder itself must stay open to Postfix, which logs in through it.
        dovecot: { usersFile: join(mailDir, "dovecot-users", "passwd"), readerGid: groupId("dovecot"), imapListen: server.mail.imapListen, imapsListen: server.mail.imapsListen },
        mailRoot: join(mailDir, "vmail"),
        vmailUid: MAILBOX_OWNER_UID,
        vmailGid: MAILBOX_OWNER_UID,
        // The daemons run (the daemon supervisor of `coyote up`, or systemd): MailReady waits for
        // Postfix and Dovecot to have loaded each commit, and names the one that is down.
        verifyDaemons,
        // Outgoing mail is signed when OpenDKIM is there to sign it; Postfix then holds mail back
        // (a temporary error) while the signer does not answer, never sending it unsigned.
        ...(findDaemonProgram("opendkim") === undefined ? {} : { dkimSigner: { account: signerAccount() } }),
      })
    : unavailableActuator("actuator.mailconf.postfix", "MailReady", hasMail, `mail needs Postfix, which is not installed on this machine (${paths.postfix}): apt-get install postfix dovecot-core`);
  const hasXmpp = (spec: ServiceSpec) => (spec.xmpp?.users.length ?? 0) > 0;
  const xmppDir = join(stateDir, "xmpp");
  const xmpp = existsSync(paths.prosodyctl)
    ? createXmppActuator({
        stateDir,
        // Prosody's own folder: under root it runs as the prosody user, who reads only this.
        configDir: join(xmppDir, "prosody"),
        dataDir: join(xmppDir, "data"),
        certificatesDir: join(xmppDir, "certs"),
        c2sPorts: [server.xmpp.clientPort],
        // Prosody's HTTP server (file sharing's uploads), on loopback behind snitch-proxy.
        httpPort: server.xmpp.httpPort,
        s2sPorts: [server.xmpp.serverPort],
        interfaces: server.xmpp.interfaces,
        // Written by Prosody itself, so in the one folder it may write; its log goes to its
        // standard output, which the daemon supervisor keeps in logs/prosody.log.
        pidFile: join(xmppDir, "data", "prosody.pid"),
        logFile: CONSOLE_LOG,
        prosodyctl: paths.prosodyctl,
        fileOwner: prosodyFileOwner(),
        // XmppReady waits for the running Prosody to serve each host, and says when it is down.
        verifyProsody: verifyDaemons,
      })
    : unavailableActuator("actuator.xmppconf.prosody", "XmppReady", hasXmpp, `XMPP needs Prosody, which is not installed on this machine (${paths.prosodyctl}): apt-get install prosody`);
  const dns = server.dns.backend === "knot"
    ? createDnsActuator({
        stateDir,
        backend: "knot",
        // DnsReady waits for the running Knot to serve each zone at its file's serial.
        knot: { ...knotPaths(stateDir, server.dns.listen), verify: verifyDaemons },
      })
    : createDnsActuator({ stateDir, backend: "builtin" });
  return [mail, xmpp, dns, createBackendsActuator({ stateDir }), createSnickersActuator({ stateDir })];
}
