/**
 * `coyote doctor` on an installed box: what `install.sh` set up, checked as it should be (the
 * user, the state folder's owner and mode, the release, the units as `coyote setup` renders them,
 * each unit running, the box's ports held by the box, the hostname resolving to the box, the
 * hostname's certificate). Each problem is named with its fix.
 */
import { Resolver } from "node:dns/promises";
import { access, readFile, readlink, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { runBounded } from "@coyote/component";
import { ServerSpec, StateStore, certificateFileName, firstCertificate, proxyRuntimePaths, specPath } from "@coyote/spec";
import type { Check } from "../commands/doctor.ts";
import { RELEASE_MARKER } from "../release/prepare.ts";
import { installedUnits } from "./units.ts";

/** Where an installed box's files are. */
export interface InstalledPaths {
  /** `/etc/coyote`, whose `install.conf` says the box was installed. */
  readonly confDir: string;
  /** `/opt/coyote`. */
  readonly prefix: string;
  /** `/etc/systemd/system`. */
  readonly unitsDir: string;
  /** `/var/lib/coyote`. */
  readonly stateDir: string;
}

/** The production paths. */
export const INSTALLED_PATHS: InstalledPaths = { confDir: "/etc/coyote", prefix: "/opt/coyote", unitsDir: "/etc/systemd/system", stateDir: "/var/lib/coyote" };

/** Whether this machine is an installed box (install.sh wrote its choices). */
export async function isInstalled(paths: InstalledPaths): Promise<boolean> {
  return access(join(paths.confDir, "install.conf")).then(() => true, () => false);
}

/** The uid of a user, from `getent passwd`; undefined when there is none. */
async function uidOf(user: string): Promise<number | undefined> {
  const result = await runBounded("getent", ["passwd", user], 10_000);
  const uid = Number(result.output.split(":")[2]);
  return result.code === 0 && Number.isInteger(uid) ? uid : undefined;
}

/** The user, the state folder's owner and mode, and the release the units start from. */
export async function checkInstallFiles(paths: InstalledPaths, user = "coyote"): Promise<Check[]> {
  const checks: Check[] = [];
  const reinstall = "run ./install.sh again from the box's checkout: it puts back what is missing";
  const uid = await uidOf(user);
  checks.push(uid === undefined ? { name: "user", result: "fail", detail: `there is no ${user} user`, fix: reinstall } : { name: "user", result: "ok", detail: `${user} (uid ${String(uid)})` });
  const info = await stat(paths.stateDir).catch(() => undefined);
  if (info === undefined) checks.push({ name: "state folder", result: "fail", detail: `${paths.stateDir} is missing`, fix: reinstall });
  else {
    const mode = info.mode & 0o777;
    // With the daemons' ACL passage, the group bits show the ACL's mask: search only.
    const private_ = mode === 0o700 || mode === 0o710;
    const owned = uid !== undefined && info.uid === uid;
    checks.push(private_ && owned
      ? { name: "state folder", result: "ok", detail: `${paths.stateDir}: coyote's, mode ${mode.toString(8)}` }
      : { name: "state folder", result: "fail", detail: `${paths.stateDir}: owner uid ${String(info.uid)}, mode ${mode.toString(8)} (want coyote, 0700)`, fix: `chown coyote:coyote ${paths.stateDir} && chmod 0700 ${paths.stateDir}` });
  }
  const current = join(paths.prefix, "current");
  const target = await readlink(current).catch(() => undefined);
  if (target === undefined) checks.push({ name: "release", result: "fail", detail: `${current} is not a link to a release`, fix: reinstall });
  else {
    const dir = resolve(paths.prefix, target);
    const complete = await access(join(dir, RELEASE_MARKER)).then(() => true, () => false);
    const built = await access(join(dir, "dist", "coyote.mjs")).then(() => true, () => false);
    checks.push(complete && built
      ? { name: "release", result: "ok", detail: `${current} → ${target}` }
      : { name: "release", result: "fail", detail: `${dir} is ${complete ? "not built (no dist/coyote.mjs)" : "not a complete release"}`, fix: reinstall });
  }
  return checks;
}

/**
 * The units: each one `coyote setup` renders is on disk with the same text, and (when systemd
 * runs) active; a daemon's service may wait for its configuration through its path unit.
 * @param rendered the units as `coyote setup` would write them now.
 */
export async function checkUnits(paths: InstalledPaths, rendered: readonly { name: string; text: string }[], systemdRuns: boolean): Promise<Check[]> {
  const checks: Check[] = [];
  const differ: string[] = [];
  for (const unit of rendered) {
    const text = await readFile(join(paths.unitsDir, unit.name), "utf8").catch(() => undefined);
    if (text !== unit.text) differ.push(`${unit.name}${text === undefined ? " (missing)" : " (changed)"}`);
  }
  checks.push(differ.length === 0
    ? { name: "units", result: "ok", detail: `${String(rendered.length)} units as coyote setup renders them` }
    : { name: "units", result: "fail", detail: `not as coyote setup renders them: ${differ.join(", ")}`, fix: "coyote setup (or ./install.sh) writes them again; then systemctl daemon-reload" });
  if (!systemdRuns) {
    checks.push({ name: "systemd", result: "warn", detail: "systemd is not running this machine: nothing runs the units", fix: "boot the machine with systemd (an image made with install.sh --no-start starts on its first boot)" });
    return checks;
  }
  for (const unit of rendered.filter((u) => !u.name.endsWith("-reload.service") && u.name !== "coyote.target")) {
    const state = (await runBounded("systemctl", ["is-active", unit.name], 10_000)).output.trim();
    const daemonWaiting = unit.name.endsWith(".service") && rendered.some((u) => u.name === unit.name.replace(/\.service$/, ".path"));
    if (state === "active" || (daemonWaiting && state === "inactive")) checks.push({ name: `unit ${unit.name}`, result: "ok", detail: state });
    else checks.push({ name: `unit ${unit.name}`, result: "fail", detail: state || "unknown", fix: `systemctl status ${unit.name}; journalctl -u ${unit.name}` });
  }
  return checks;
}

/** The public ports of a box and who should hold them. */
export function boxPorts(server: ServerSpec): { port: number; what: string }[] {
  const portOf = (hostPort: string) => Number(/:(\d+)$/.exec(hostPort)?.[1] ?? "0");
  return [
    { port: server.ports.http, what: "HTTP (snitch-proxy)" },
    { port: server.ports.https, what: "HTTPS (snitch-proxy)" },
    ...server.dns.listen.slice(0, 1).map((l) => ({ port: portOf(l), what: "DNS" })),
    { port: portOf(server.mail.smtpListen), what: "SMTP (Postfix)" },
    { port: portOf(server.mail.submissionListen), what: "submission (Postfix)" },
    { port: portOf(server.mail.imapsListen), what: "IMAPS (Dovecot)" },
    { port: server.xmpp.clientPort, what: "XMPP clients (Prosody)" },
  ];
}

/**
 * Who listens on each of the box's ports (`ss`): nobody is a failure, another program too.
 * @param listeners `ss -Hlntup` output (read by the caller, so a test can give its own).
 * @param ours whether a pid is the box's (its cgroup names a coyote unit, or it runs as coyote).
 */
export function checkPortHolders(ports: readonly { port: number; what: string }[], listeners: string, ours: (pid: number) => boolean): Check[] {
  return ports.map(({ port, what }): Check => {
    const line = listeners.split("\n").find((l) => new RegExp(`[:\\]]${String(port)}\\s`).test(l));
    if (line === undefined) return { name: `port ${String(port)}`, result: "fail", detail: `nothing listens for ${what}`, fix: "see coyote status and coyote logs: the component or daemon that serves it is down" };
    const match = /users:\(\("([^"]*)",pid=(\d+)/.exec(line);
    if (match?.[2] === undefined) return { name: `port ${String(port)}`, result: "ok", detail: `${what}: listening` };
    const pid = Number(match[2]);
    return ours(pid)
      ? { name: `port ${String(port)}`, result: "ok", detail: `${what}: ${match[1] ?? "?"} (pid ${String(pid)})` }
      : { name: `port ${String(port)}`, result: "fail", detail: `${what}: held by ${match[1] ?? "?"} (pid ${String(pid)}), not by the box`, fix: `stop and disable ${match[1] ?? "it"}` };
  });
}

/** Whether a pid belongs to the box: a coyote unit's cgroup, or run by the coyote user. */
export async function isBoxProcess(pid: number, coyoteUid: number | undefined): Promise<boolean> {
  const cgroup = await readFile(`/proc/${String(pid)}/cgroup`, "utf8").catch(() => "");
  if (/coyote/.test(cgroup)) return true;
  const info = await stat(`/proc/${String(pid)}`).catch(() => undefined);
  return info !== undefined && coyoteUid !== undefined && info.uid === coyoteUid;
}

/**
 * The hostname resolves to the box's public addresses (asked to `resolver`, `host:port`, or the
 * system's resolvers), and its certificate is there and valid for more than two weeks.
 */
export async function checkNameAndCertificate(server: ServerSpec, stateDir: string, options: { resolver?: string; now?: number } = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const resolver = new Resolver({ timeout: 3000, tries: 2 });
  if (options.resolver !== undefined) resolver.setServers([options.resolver]);
  const wanted = [server.publicIPv4, server.publicIPv6].filter((a): a is string => a !== undefined);
  if (wanted.length === 0) checks.push({ name: "hostname", result: "warn", detail: `${server.hostname}: the box has no public address in its server spec`, fix: "a private box is reached by its local name only" });
  else {
    const found = [...(await resolver.resolve4(server.hostname).catch(() => [])), ...(await resolver.resolve6(server.hostname).catch(() => []))];
    const missing = wanted.filter((a) => !found.includes(a));
    checks.push(missing.length === 0
      ? { name: "hostname", result: "ok", detail: `${server.hostname} resolves to ${found.join(", ")}` }
      : { name: "hostname", result: "fail", detail: `${server.hostname} resolves to ${found.join(", ") || "nothing"}, not to ${missing.join(", ")}`, fix: `at the registrar or DNS host of ${server.hostname.split(".").slice(1).join(".")}: an A (and AAAA) record for ${server.hostname} with the box's addresses` });
  }
  const file = join(proxyRuntimePaths(stateDir).certs, certificateFileName(server.hostname));
  const pem = await readFile(file, "utf8").catch(() => undefined);
  const certificate = pem === undefined ? undefined : firstCertificate(pem);
  if (certificate === undefined) {
    checks.push({ name: "certificate", result: "fail", detail: `no certificate for ${server.hostname} in ${file}`, fix: "see coyote logs --component minion: snickers keeps the box's own certificate" });
    return checks;
  }
  const left = Date.parse(certificate.validTo) - (options.now ?? Date.now());
  const days = Math.floor(left / 86_400_000);
  const covers = certificate.checkHost(server.hostname) !== undefined;
  if (!covers) checks.push({ name: "certificate", result: "fail", detail: `the certificate in ${file} does not name ${server.hostname}`, fix: "see coyote logs --component minion" });
  else if (days < 14) checks.push({ name: "certificate", result: "fail", detail: `${server.hostname}: expires in ${String(days)} days (${certificate.validTo})`, fix: "see coyote logs --component minion: the renewal is failing" });
  else checks.push({ name: "certificate", result: "ok", detail: `${server.hostname}: from ${certificate.issuer.split("\n").find((l) => l.startsWith("CN="))?.slice(3) ?? "?"}, ${String(days)} days left` });
  return checks;
}

/** The Node.js binary the units run: the first word of the minion unit's `ExecStart=`. */
async function unitNode(unitsDir: string): Promise<string> {
  const text = await readFile(join(unitsDir, "coyote-minion.service"), "utf8").catch(() => "");
  return /^ExecStart="([^"]+)"/m.exec(text)?.[1] ?? process.execPath;
}

/** Every check of an installed box, in the order a person would fix them. */
export async function installedBoxChecks(paths: InstalledPaths, options: { resolver?: string } = {}): Promise<Check[]> {
  const checks = await checkInstallFiles(paths);
  const store = await StateStore.open(paths.stateDir);
  const server = await store.readJson(specPath("server"), ServerSpec);
  if (server === undefined) return [...checks, { name: "server spec", result: "fail", detail: "the box has no server spec", fix: "run ./install.sh again: coyote setup writes it" }];
  const conf = await readFile(join(paths.confDir, "install.conf"), "utf8").catch(() => "");
  const choice = (key: string) => !new RegExp(`^${key}=no$`, "m").test(conf);
  const rendered = installedUnits(server, { mail: choice("mail"), xmpp: choice("xmpp"), stateDir: paths.stateDir, current: join(paths.prefix, "current"), node: await unitNode(paths.unitsDir) });
  const systemdRuns = await access("/run/systemd/system").then(() => true, () => false);
  checks.push(...(await checkUnits(paths, rendered, systemdRuns)));
  if (systemdRuns) {
    const listeners = await runBounded("ss", ["-Hlntup"], 10_000);
    const coyoteUid = await uidOf("coyote");
    const pids = [...listeners.output.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    const box = new Set<number>();
    for (const pid of new Set(pids)) if (await isBoxProcess(pid, coyoteUid)) box.add(pid);
    checks.push(...checkPortHolders(boxPorts(server), listeners.output, (pid) => box.has(pid)));
  }
  checks.push(...(await checkNameAndCertificate(server, paths.stateDir, options)));
  return checks;
}
