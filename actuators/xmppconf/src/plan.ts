/**
 * Planning: from what observe saw and the service's spec, the steps that make Prosody serve the
 * service's domains and users. Pure: it reads nothing and writes nothing.
 */
import { join } from "node:path";
import type { Target } from "@coyote/actuator";
import type { PartialPlan } from "@coyote/actuator/unmet";
import { MISSING_CREDENTIAL, withCredentials, type ServiceSpec } from "@coyote/spec";
import { HOST_FILE_NAME } from "./files.ts";
import { encodeDataPathPart, groupChatHost, HOST_FILE_SUFFIX, HOSTS_DIR, MAIN_CONFIG_FILE, renderAccount, renderHostConfig, uploadHost, type HostOptions } from "./render.ts";
import { parseScram, passwordHashScheme, type ScramCredential, type ScramHash } from "@coyote/spec";
import type { ObservedHostFile, XmppObserved, XmppStep } from "./types.ts";

/** A reason the plan cannot do all that the spec asks, reported by its last step. */
interface Problem {
  readonly reason: string;
  readonly message: string;
}

/** What a plan needs besides the target and what was observed: fixed by the actuator's options. */
export interface PlanSettings {
  /** The rendered main configuration. */
  readonly mainConfig: string;
  /** The folder of Prosody's certificate copies, `<domain>.pem`. */
  readonly certificatesDir: string;
  /** The port snitch-proxy serves HTTPS on, which file sharing's URLs name (443 when unset). */
  readonly httpsPort?: number;
}

/** One entry of a spec's `xmpp.users`. */
type XmppUser = NonNullable<ServiceSpec["xmpp"]>["users"][number];

/**
 * Plans the changes for one service. A domain another file already defines, or a user whose hash
 * is unusable, is left as it is and named in the plan's `unmet`: the steps do the rest, and the
 * condition reports the problems. Once the rest is done the plan has no steps, whatever is unmet.
 * @param settings the rendered main configuration (written when the service serves a domain) and
 *   the folder of Prosody's certificate copies.
 */
export function planXmpp(target: Target, observed: XmppObserved, settings: PlanSettings): PartialPlan<XmppStep> {
  const { mainConfig, certificatesDir } = settings;
  const steps: XmppStep[] = [];
  const describe: string[] = [];
  const problems: Problem[] = [];
  const context = `planning xmpp for service ${target.id}`;
  // The spec with its credentials read from secrets/ (observe).
  const spec = target.spec === undefined ? undefined : withCredentials(target.spec, observed.credentials ?? new Map());
  const wanted = spec?.xmpp === undefined ? [] : spec.domains.map((d) => d.name);

  const { owned, served } = servableDomains(target.id, observed.hostFiles, wanted, problems);

  if (served.length > 0 && observed.mainConfig !== mainConfig) {
    steps.push({ kind: "write-main-config", content: mainConfig });
    describe.push(`write ${MAIN_CONFIG_FILE}`);
  } else if (served.length > 0 && observed.foldersShared === false) {
    // Writing the main configuration shares them too; otherwise, once lost, they are given back.
    steps.push({ kind: "share-folders" });
    describe.push("give prosody's folders back to its group");
  }
  const { desired, keep } = desiredAccounts(spec?.xmpp?.users ?? [], served, problems);

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
    const content = renderHostConfig(domain, target.id, { hash, certificate: join(certificatesDir, `${domain}.pem`), groupChat: spec?.xmpp?.groupChat === true, ...fileSharingOf(spec, settings.httpsPort) });
    if (owned.get(domain)?.content !== content) {
      steps.push({ kind: "write-host", domain, content });
      describe.push(`${owned.has(domain) ? "rewrite" : "add"} VirtualHost ${domain}`);
    }
    rendered.set(domain, new Map([...accounts].map(([username, credential]) => [username, renderAccount(credential)])));
  }

  const writes: XmppStep[] = [];
  const removals: XmppStep[] = [];
  const close: string[] = [];
  const uncertified: string[] = [];
  for (const domain of served) {
    // Prosody's own copy of the certificate issued for the domain: the issued one is not Prosody's to read.
    const certificate = observed.certificates?.get(domain);
    if (certificate?.issued === undefined) uncertified.push(domain);
    else if (certificate.copy !== certificate.issued || !certificate.copyMetadataOk) {
      writes.push({ kind: "write-certificate", domain, content: certificate.issued });
      describe.push(`${certificate.copy === undefined ? "add" : "update"} the certificate of ${domain}`);
    }
  }
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
    if (observed.certificates?.get(domain)?.copy !== undefined) {
      removals.push({ kind: "remove-certificate", domain });
      describe.push(`remove the certificate of ${domain}`);
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

  const hosts = served.flatMap((domain) => [
    domain,
    ...(spec?.xmpp?.groupChat === true ? [groupChatHost(domain)] : []),
    ...(spec?.xmpp?.fileSharing === true ? [uploadHost(domain)] : []),
  ]);
  const waiting = awaitProsody(target.id, hosts, uncertified, observed, steps.length > 0);
  if (waiting !== undefined) {
    steps.push(waiting);
    describe.push(waiting.message);
  }

  // One bad user does not hold back the others: what can be done is planned, what cannot is
  // reported beside it, and a converged service plans nothing however bad the rest stays.
  const first = problems[0];
  if (first === undefined) return { steps, describe };
  return { steps, describe, unmet: { reason: first.reason, message: `${context}: ${problems.map((p) => p.message).join("; ")}` } };
}

/** The file sharing a spec asks for, as {@link renderHostConfig} takes it: nothing when it asks for none. */
function fileSharingOf(spec: ServiceSpec | undefined, httpsPort: number | undefined): Pick<HostOptions, "fileSharing"> {
  const xmpp = spec?.xmpp;
  if (xmpp?.fileSharing !== true) return {};
  return { fileSharing: { ...(xmpp.fileSizeLimitMb === undefined ? {} : { sizeLimitMb: xmpp.fileSizeLimitMb }), ...(httpsPort === undefined ? {} : { httpsPort }) } };
}

/**
 * Which host files the service owns (by domain), and which of the domains it wants it may serve:
 * those no other file defines (or is named after). A conflicting domain this service already owns
 * is left as it is, not removed: a bad state never wipes what works. Each refused domain is added
 * to `problems`.
 */
function servableDomains(serviceId: string, hostFiles: readonly ObservedHostFile[], wanted: readonly string[], problems: Problem[]): { owned: Map<string, ObservedHostFile>; served: string[] } {
  // Which files this service owns, and every file that defines each VirtualHost today.
  const owned = new Map<string, ObservedHostFile>();
  for (const file of hostFiles) {
    const domain = HOST_FILE_NAME.exec(file.file)?.[1];
    if (domain !== undefined && file.owner === serviceId) owned.set(domain, file);
  }
  const definers = new Map<string, ObservedHostFile[]>();
  for (const file of hostFiles) {
    const named = HOST_FILE_NAME.exec(file.file)?.[1];
    for (const host of new Set(named === undefined ? file.hosts : [...file.hosts, named])) definers.set(host, [...(definers.get(host) ?? []), file]);
  }

  // The domains this service may serve: those no other file defines (or is named after). A
  // conflicting domain this service already owns is left as it is, not removed: a bad state
  // never wipes what works.
  const served: string[] = [];
  for (const domain of wanted) {
    const ownFile = `${domain}${HOST_FILE_SUFFIX}`;
    const holder = (definers.get(domain) ?? []).find((file) => !(file.file === ownFile && file.owner === serviceId));
    if (holder !== undefined) {
      const who = holder.owner === undefined ? `a file coyote did not make (${HOSTS_DIR}/${holder.file})` : `service ${holder.owner}`;
      problems.push({ reason: "DomainTaken", message: `domain ${domain} is already an xmpp host of ${who}` });
      continue;
    }
    served.push(domain);
  }
  return { owned, served };
}

/**
 * The accounts each served domain should have: username → credential. A user whose hash is
 * unusable, or who is listed twice with different hashes, keeps whatever account it has (a bad
 * spec never wipes good state): its JID goes to `keep` and the reason to `problems`.
 */
function desiredAccounts(users: readonly XmppUser[], served: readonly string[], problems: Problem[]): { desired: Map<string, Map<string, ScramCredential>>; keep: Set<string> } {
  const desired = new Map<string, Map<string, ScramCredential>>();
  const keep = new Set<string>();
  const seen = new Map<string, string>();
  for (const domain of served) desired.set(domain, new Map());
  for (const { passwordHash = MISSING_CREDENTIAL, ...user } of users) {
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
  return { desired, keep };
}

/**
 * The step that waits for the running Prosody, when it is verified and does not serve the service
 * yet: Prosody down, a domain without an issued certificate, a host (a VirtualHost or one of its
 * components: group chat, file sharing) not active, or the service's files about to change (they reach Prosody at the
 * commit). Undefined when Prosody is not verified (the condition then means "configured") or
 * serves every host.
 */
function awaitProsody(id: string, hosts: readonly string[], uncertified: readonly string[], observed: XmppObserved, changing: boolean): Extract<XmppStep, { kind: "await-prosody" }> | undefined {
  const live = observed.live;
  if (live === undefined || hosts.length === 0) return undefined;
  const why: string[] = [];
  if (live.down !== undefined) why.push(live.down);
  if (uncertified.length > 0) why.push(`no certificate is issued for ${uncertified.join(", ")} yet`);
  const inactive = hosts.filter((host) => !live.hosts.has(host));
  if (live.down === undefined && inactive.length > 0) why.push(`prosody has not activated ${inactive.join(", ")} yet`);
  if (why.length === 0 && !changing) return undefined;
  const reason = live.down !== undefined ? "ProsodyDown" : uncertified.length > 0 ? "CertificateMissing" : "XmppPending";
  const message = `xmpp for service ${id} is not served yet: ${why.length > 0 ? why.join("; ") : "its new configuration reaches prosody at the commit"}`;
  return { kind: "await-prosody", reason, message, afterMs: reason === "XmppPending" ? 1000 : 5000 };
}
