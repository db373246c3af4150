// Fixtures of the daemon supervisor's tests: minimal configurations of the real daemons, each on
// loopback ports of its own under a temp state folder, and process checks through /proc.
import { chmod, chown, mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { daemonPaths, type DaemonPaths } from "../index.ts";
import { lookupUser } from "../daemons/files.ts";

/** Writes a Knot configuration answering `CH TXT id.server` with `identity` on 127.0.0.1:`port`. */
export async function writeKnotConf(paths: DaemonPaths, port: number, identity: string): Promise<void> {
  const dir = join(paths.stateDir, "dns", "knot");
  await mkdir(join(dir, "db"), { recursive: true });
  await mkdir(join(dir, "run"), { recursive: true });
  const text = [
    "server:",
    `    rundir: "${join(dir, "run")}"`,
    `    listen: 127.0.0.1@${port}`,
    `    identity: "${identity}"`,
    "database:",
    `    storage: "${join(dir, "db")}"`,
    "control:",
    `    listen: "${join(dir, "run", "knot.sock")}"`,
    "log:",
    "  - target: stdout",
    "    any: info",
    "",
  ].join("\n");
  await writeFile(`${paths.knotConf}.tmp`, text);
  await rename(`${paths.knotConf}.tmp`, paths.knotConf);
}

const POSTFIX_SERVICES = [
  "pickup unix n - n 60 1 pickup",
  "cleanup unix n - n - 0 cleanup",
  "qmgr unix n - n 300 1 qmgr",
  "rewrite unix - - n - - trivial-rewrite",
  "bounce unix - - n - 0 bounce",
  "defer unix - - n - 0 bounce",
  "trace unix - - n - 0 bounce",
  "verify unix - - n - 1 verify",
  "flush unix n - n 1000? 0 flush",
  "proxymap unix - - n - - proxymap",
  "smtp unix - - n - - smtp",
  "relay unix - - n - - smtp",
  "showq unix n - n - - showq",
  "error unix - - n - - error",
  "retry unix - - n - - error",
  "discard unix - - n - - discard",
  "anvil unix - - n - 1 anvil",
  "scache unix - - n - 1 scache",
  "postlog unix-dgram n - n - 1 postlogd",
];

/** Writes a Postfix instance greeting with `220 <banner>` on 127.0.0.1:`port`, as mailconf lays it out. */
export async function writePostfixConf(paths: DaemonPaths, port: number, banner: string): Promise<void> {
  const root = join(paths.stateDir, "mail", "postfix");
  await mkdir(paths.postfixConfigDir, { recursive: true });
  await mkdir(join(root, "queue"), { recursive: true });
  const main = [
    "compatibility_level = 3.6",
    `queue_directory = ${join(root, "queue")}`,
    `data_directory = ${join(root, "data")}`,
    "maillog_file = /dev/stdout",
    "syslog_name = postfix-coyote-test",
    "myhostname = box.test",
    "inet_interfaces = loopback-only",
    "mydestination =",
    "local_recipient_maps =",
    "alias_maps =",
    `smtpd_banner = ${banner}`,
    "",
  ].join("\n");
  await writeFile(join(paths.postfixConfigDir, "main.cf.tmp"), main);
  await rename(join(paths.postfixConfigDir, "main.cf.tmp"), join(paths.postfixConfigDir, "main.cf"));
  await writeFile(join(paths.postfixConfigDir, "master.cf"), [`127.0.0.1:${port} inet n - n - - smtpd`, ...POSTFIX_SERVICES, ""].join("\n"));
}

/** Writes a Dovecot configuration without listeners whose default process limit is `processLimit`. */
export async function writeDovecotConf(paths: DaemonPaths, processLimit: number): Promise<void> {
  const dir = join(paths.stateDir, "mail", "dovecot");
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "users"), "");
  const text = [
    `base_dir = ${join(dir, "run")}`,
    `state_dir = ${join(dir, "state")}`,
    `instance_name = coyote-test-${process.pid}`,
    "protocols =",
    "ssl = no",
    "log_path = /dev/stderr",
    `default_process_limit = ${processLimit}`,
    `passdb {\n  driver = passwd-file\n  args = ${join(dir, "users")}\n}`,
    `userdb {\n  driver = passwd-file\n  args = ${join(dir, "users")}\n}`,
    "",
  ].join("\n");
  await writeFile(`${paths.dovecotConf}.tmp`, text);
  await rename(`${paths.dovecotConf}.tmp`, paths.dovecotConf);
}

/**
 * Writes a Prosody configuration with c2s on 127.0.0.1:`port` and a `coyote_marker` option the
 * test reads back from the running server. Its data folder belongs to the `prosody` user, which
 * the supervisor runs it as when the test runs as root.
 */
export async function writeProsodyConf(paths: DaemonPaths, port: number, marker: string): Promise<void> {
  const dir = join(paths.stateDir, "xmpp");
  const data = join(dir, "data");
  await mkdir(paths.prosodyHostsDir, { recursive: true });
  await mkdir(data, { recursive: true });
  await chmod(data, 0o750);
  const owner = process.getuid?.() === 0 ? lookupUser("prosody") : undefined;
  if (owner) await chown(data, owner.uid, owner.gid);
  const text = [
    `pidfile = "${join(data, "prosody.pid")}"`,
    `data_path = "${data}"`,
    'log = { info = "*console" }',
    'interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${port} }`,
    "s2s_ports = { }",
    "c2s_direct_tls_ports = { }",
    "s2s_direct_tls_ports = { }",
    "http_ports = { }",
    "https_ports = { }",
    'modules_enabled = { "admin_shell" }',
    `coyote_marker = "${marker}"`,
    'VirtualHost "box.test"',
    "",
  ].join("\n");
  await writeFile(`${paths.prosodyConf}.tmp`, text);
  await rename(`${paths.prosodyConf}.tmp`, paths.prosodyConf);
}

/**
 * Makes a state folder as the store makes it (0700: only its owner may even pass through), and
 * returns its daemon layout: the supervisor gives each daemon's users their passage.
 */
export async function daemonState(dir: string): Promise<DaemonPaths> {
  await chmod(dir, 0o700);
  return daemonPaths(dir);
}

export { groupMembers } from "../daemons/files.ts";
