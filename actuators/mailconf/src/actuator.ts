import type { Stats } from "node:fs";
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { z } from "zod";
import { ActuatorError, FileCache } from "@coyote/actuator";
import type { Actuator, ActuatorContext, Plan, Target } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { DomainName, readCredentials, removeStaleTempFiles, SchemaVersion, ServiceId, withCredentials, writeFileAtomic } from "@coyote/spec";
import type { ServerSpec } from "@coyote/spec";
import { dkimRecordOf, dkimRecordText, generateDkimKey } from "./dkim.ts";
import { buildFragment, fragmentText, MailFragment } from "./fragment.ts";
import { ensureDir, ensureMode, readText, removeFile, runProgram, statOrUndefined, writeIfChanged, writePasswdFile } from "./files.ts";
import { resolveOptions } from "./options.ts";
import type { MailActuatorOptions, ResolvedOptions } from "./options.ts";
import { MAP_FILES, renderMainCf, renderMaps, renderMasterCf } from "./render.ts";

/** The actuator's id. */
export const MAIL_ACTUATOR_ID = "actuator.mailconf.postfix";
/** The condition it reports on each service. */
export const MAIL_CONDITION = "MailReady";

/**
 * Which service owns each hosted domain, as of the last commit: `<stateDir>/mail/domains.json`.
 * `observe` reads it so that a service cannot take a domain another service already has.
 */
export const MailDomainIndex = z.strictObject({
  schemaVersion: SchemaVersion,
  owners: z.record(DomainName, ServiceId),
});
/** Which service owns each hosted domain. */
export type MailDomainIndex = z.infer<typeof MailDomainIndex>;

/** The files under `<stateDir>/mail/`, for one state folder. */
export interface MailPaths {
  /** `<stateDir>/mail`. */
  readonly root: string;
  /** `<stateDir>/mail/services/<id>.json`: one fragment per service with mail. */
  readonly services: string;
  /** `<stateDir>/mail/dkim/<domain>.key` (0600) and `<domain>.json` (the DNS record). */
  readonly dkim: string;
  /** `<stateDir>/mail/domains.json`: domain owners as of the last commit. */
  readonly index: string;
  /** `<stateDir>/mail/postfix-reload-pending`: Postfix files changed and are not live yet. */
  readonly reloadPending: string;
}

/** Where the actuator keeps its files in a state folder. */
export function mailPaths(stateDir: string): MailPaths {
  const root = join(stateDir, "mail");
  return {
    root,
    services: join(root, "services"),
    dkim: join(root, "dkim"),
    index: join(root, "domains.json"),
    reloadPending: join(root, "postfix-reload-pending"),
  };
}

/** What `observe` saw of one domain's DKIM files. */
export interface DkimObserved {
  /** The private key's permission bits, or undefined when there is no key. */
  readonly keyMode: number | undefined;
  /** The record file as it is on disk. */
  readonly recordText: string | undefined;
  /** The record file the key calls for (with the configured selector). */
  readonly expectedRecordText: string | undefined;
  /** Why the key on disk cannot be used, when it cannot. */
  readonly keyError: string | undefined;
}

/** What `observe` returns: this service's files, and who owns the domains it names. */
export interface MailObserved {
  /** The fragment file's text, or undefined when there is none. */
  readonly fragmentText: string | undefined;
  /** The fragment, or undefined when there is none or it is invalid. */
  readonly fragment: MailFragment | undefined;
  /** Owners (from the last commit) of the domains this service names now or named before. */
  readonly owners: Readonly<Record<string, string>>;
  /** The DKIM files of those domains. */
  readonly dkim: Readonly<Record<string, DkimObserved>>;
  /** The hashes of the secrets the spec's mailboxes name, by secret name. */
  readonly credentials?: ReadonlyMap<string, string>;
}

/** One change the actuator makes for a service, in the order the plan lists them. */
export type MailStep =
  | { readonly kind: "remove-dkim"; readonly domain: string }
  | { readonly kind: "write-fragment"; readonly text: string }
  | { readonly kind: "remove-fragment" }
  | { readonly kind: "ensure-dkim"; readonly domain: string }
  | { readonly kind: "fail"; readonly reason: string; readonly detail: string };

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function readIndex(index: FileCache<Record<string, string>>, path: string, logger: CoyoteLogger): Promise<Record<string, string>> {
  try {
    return (await index.read()) ?? {};
  } catch (error) {
    // The index is rebuilt by every commit from the fragments; a damaged one only weakens the
    // check for taken domains until then, and commit's own conflict rule still holds.
    logger.warn({ file: path, err: error }, "the mail domain index is invalid; it is rebuilt at the next commit");
    return {};
  }
}

function parseFragment(text: string, file: string): MailFragment {
  const fragment = MailFragment.parse(JSON.parse(text));
  const id = file.replace(/\.json$/, "");
  if (fragment.id !== id) throw new Error(`the fragment names service ${fragment.id}, not ${id}`);
  return fragment;
}

async function readFragments(dir: string, logger: CoyoteLogger): Promise<MailFragment[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const fragments: MailFragment[] = [];
  for (const name of names.filter((n) => n.endsWith(".json") && !n.startsWith(".")).sort()) {
    const text = await readText(join(dir, name));
    if (text === undefined) continue;
    try {
      fragments.push(parseFragment(text, name));
    } catch (error) {
      // One bad fragment must not take every other service's mail down: it is left out (its
      // service's next apply rewrites it) and the rest are combined as usual.
      logger.error({ file: join(dir, name), err: error }, "skipping an invalid mail fragment");
    }
  }
  return fragments;
}

async function observeDkim(paths: MailPaths, domain: string, selector: string): Promise<DkimObserved> {
  const keyPath = join(paths.dkim, `${domain}.key`);
  const keyStats: Stats | undefined = await statOrUndefined(keyPath);
  const recordText = await readText(join(paths.dkim, `${domain}.json`));
  if (keyStats === undefined) return { keyMode: undefined, recordText, expectedRecordText: undefined, keyError: undefined };
  const pem = (await readText(keyPath)) ?? "";
  try {
    return { keyMode: keyStats.mode & 0o7777, recordText, expectedRecordText: dkimRecordText(dkimRecordOf(pem, selector)), keyError: undefined };
  } catch (error) {
    return { keyMode: keyStats.mode & 0o7777, recordText, expectedRecordText: undefined, keyError: errorText(error) };
  }
}

/**
 * Plans one service. Pure: everything it needs was observed.
 * @throws ActuatorError `MailDomainTaken` (retried: it clears when the other service lets go of
 *   the domain), `DuplicateAddress`/`InvalidAddress`/`InvalidDkimKey` (terminal), and
 *   `UnsupportedPasswordHash` (terminal) when nothing else is left to change.
 */
function planMail(options: ResolvedOptions, target: Target, observed: MailObserved): Plan<MailStep> {
  const id = target.id;
  const spec = target.spec?.mail === undefined ? undefined : target.spec;
  const steps: MailStep[] = [];
  const describe: string[] = [];
  let desired: MailFragment | undefined;
  let rejected: ReturnType<typeof buildFragment>["rejected"] = [];
  if (spec !== undefined) {
    for (const { name } of spec.domains) {
      const owner = observed.owners[name];
      if (owner !== undefined && owner !== id) {
        throw new ActuatorError("MailDomainTaken", `planning mail for service ${id}: domain ${name} already receives mail for service ${owner}`);
      }
    }
    ({ fragment: desired, rejected } = buildFragment(id, spec, observed.fragment, options.passwordSchemes));
  }
  const desiredDomains = new Set(desired?.domains ?? []);
  // Withdraw the DKIM files of domains this service no longer has, before the fragment that
  // records them goes: a crash in between must not forget what there is to withdraw.
  for (const domain of [...(observed.fragment?.domains ?? [])].sort(compareStrings)) {
    if (desiredDomains.has(domain)) continue;
    const owner = observed.owners[domain];
    const dkim = observed.dkim[domain];
    if ((owner === undefined || owner === id) && dkim !== undefined && (dkim.keyMode !== undefined || dkim.recordText !== undefined)) {
      steps.push({ kind: "remove-dkim", domain });
      describe.push(`remove the DKIM key and record of ${domain}`);
    }
  }
  if (desired !== undefined) {
    const text = fragmentText(desired);
    if (text !== observed.fragmentText) {
      steps.push({ kind: "write-fragment", text });
      describe.push(`write the mail of ${desired.domains.join(", ")}: ${desired.mailboxes.length} mailbox(es), ${desired.aliases.length} alias(es)`);
    }
  } else if (observed.fragmentText !== undefined) {
    steps.push({ kind: "remove-fragment" });
    describe.push("remove the service's mail domains, mailboxes and aliases (Maildirs are kept)");
  }
  for (const domain of desired?.domains ?? []) {
    const dkim = observed.dkim[domain];
    if (dkim?.keyError !== undefined) {
      throw new ActuatorError("InvalidDkimKey", `planning mail for service ${id}: the DKIM key of ${domain} cannot be used (${dkim.keyError}); it is never replaced automatically, remove it by hand to get a new one`, { terminal: true });
    }
    if (dkim?.keyMode === undefined) {
      steps.push({ kind: "ensure-dkim", domain });
      describe.push(`create the DKIM key of ${domain}`);
    } else if (dkim.keyMode !== 0o600 || dkim.recordText !== dkim.expectedRecordText) {
      steps.push({ kind: "ensure-dkim", domain });
      describe.push(`write the DKIM record of ${domain}`);
    }
  }
  if (rejected.length > 0) {
    const detail = `unsupported password hash for ${rejected.map((r) => `${r.address} (${r.why}${r.keptPrevious ? "; its previous hash is kept" : "; the mailbox is not created"})`).join(", ")}`;
    if (steps.length === 0) throw new ActuatorError("UnsupportedPasswordHash", `planning mail for service ${id}: ${detail}`, { terminal: true });
    steps.push({ kind: "fail", reason: "UnsupportedPasswordHash", detail });
    describe.push(`report: ${detail}`);
  }
  return { steps, describe };
}

async function ensureDkim(options: ResolvedOptions, paths: MailPaths, id: string, domain: string, logger: CoyoteLogger): Promise<void> {
  await ensureDir(paths.dkim);
  const keyPath = join(paths.dkim, `${domain}.key`);
  let pem = await readText(keyPath);
  if (pem === undefined) {
    // Made only when missing and never replaced: receivers verify mail in flight against the
    // published key, so a new key would fail it until DNS caches expire.
    pem = await generateDkimKey();
    await writeFileAtomic(keyPath, pem, { mode: 0o600 });
    logger.info({ domain }, `created the DKIM key of ${domain}`);
  } else {
    await ensureMode(keyPath, 0o600);
  }
  let text: string;
  try {
    text = dkimRecordText(dkimRecordOf(pem, options.dkimSelector));
  } catch (error) {
    throw new ActuatorError("InvalidDkimKey", `applying mail for service ${id}: the DKIM key of ${domain} cannot be used (${errorText(error)})`, { terminal: true, cause: error });
  }
  await writeIfChanged(join(paths.dkim, `${domain}.json`), text, 0o644);
}

async function reloadPostfix(options: ResolvedOptions, context: ActuatorContext, changed: readonly string[]): Promise<void> {
  const run = async (command: string) => {
    try {
      return await runProgram(options.postfixBin, ["-c", options.configDir, command], { signal: context.signal });
    } catch (error) {
      throw new ActuatorError("PostfixUnavailable", `committing mail: running ${options.postfixBin} ${command}: ${errorText(error)}`, { cause: error });
    }
  };
  const status = await run("status");
  if (status.code !== 0) {
    // Not running: it reads the new files when it starts, so there is nothing to reload.
    context.logger.info({ configDir: options.configDir, changed }, "postfix is not running; its new configuration takes effect when it starts");
    return;
  }
  const reload = await run("reload");
  if (reload.code !== 0) {
    throw new ActuatorError("PostfixReloadFailed", `committing mail: postfix -c ${options.configDir} reload exited with ${String(reload.code)}: ${reload.stderr.trim() || "no message (see the postfix log)"}`);
  }
  context.logger.event("CONFIG_RELOADED", { daemon: "postfix", configDir: options.configDir, changed }, "postfix reloaded its maps and configuration");
}

/**
 * Creates the mail actuator (`actuator.mailconf.postfix`, condition `MailReady`): Postfix virtual
 * domains, mailboxes and aliases, Dovecot users with hashed passwords, and a DKIM key per domain
 * that dnsconf publishes. Side-effect free: it only checks its options.
 *
 * Per service, `apply` writes the service's fragment (`<stateDir>/mail/services/<id>.json`) and
 * its domains' DKIM keys. `commit` rebuilds the combined Postfix maps and the Dovecot users file
 * from all fragments, writes only the files whose content changed, and runs `postfix reload` once
 * when a Postfix file changed (a marker file makes a reload interrupted by a crash happen at the
 * next commit). Dovecot needs no reload: it re-reads its passwd-file when the file changes.
 *
 * A deleted service (or one without `mail`) loses its fragment, so its domains, mailboxes and
 * aliases leave the maps at the next commit, and its DKIM key and record are removed. Its
 * Maildirs are never deleted: mail is not lost because a spec was removed, perhaps by mistake.
 *
 * Signing outgoing mail (OpenDKIM or similar) is out of scope: the keys are made and published so
 * that a signer can be added without touching DNS.
 * @throws ActuatorError `InvalidOptions` (terminal) for a bad option.
 */
export function createMailActuator(options: MailActuatorOptions): Actuator<MailObserved, MailStep> {
  const resolved = resolveOptions(options);
  const paths = mailPaths(resolved.stateDir);
  // Every service's observe consults the domain index; it is parsed again only when it changed.
  const domainIndex = new FileCache(paths.index, (text) => MailDomainIndex.parse(JSON.parse(text)).owners);
  return {
    id: MAIL_ACTUATOR_ID,
    condition: MAIL_CONDITION,
    appliesTo: (spec) => spec.mail !== undefined,

    async observe(target: Target, context: ActuatorContext): Promise<MailObserved> {
      const fragmentPath = join(paths.services, `${target.id}.json`);
      const text = await readText(fragmentPath);
      let fragment: MailFragment | undefined;
      if (text !== undefined) {
        try {
          fragment = parseFragment(text, `${target.id}.json`);
        } catch (error) {
          context.logger.warn({ file: fragmentPath, err: error }, "the service's mail fragment is invalid; it is rewritten");
        }
      }
      const domains = new Set([...(target.spec?.mail === undefined ? [] : target.spec.domains.map((d) => d.name)), ...(fragment?.domains ?? [])]);
      const index = await readIndex(domainIndex, paths.index, context.logger);
      const owners: Record<string, string> = {};
      const dkim: Record<string, DkimObserved> = {};
      for (const domain of [...domains].sort(compareStrings)) {
        const owner = index[domain];
        if (owner !== undefined) owners[domain] = owner;
        dkim[domain] = await observeDkim(paths, domain, resolved.dkimSelector);
      }
      let credentials: ReadonlyMap<string, string> = new Map();
      if (target.spec !== undefined) {
        const read = await readCredentials(target.spec, (name) => context.store.readSecret(name));
        if (read.missing.length > 0) context.logger.warn({ serviceId: target.id, secrets: read.missing }, "mailbox credentials named by the spec are missing from secrets/");
        credentials = read.hashes;
      }
      return { fragmentText: text, fragment, owners, dkim, credentials };
    },

    plan(target: Target, observed: MailObserved, _server: ServerSpec): Plan<MailStep> {
      // Plan from the spec with its credentials read (observe); a spec that names no secret is the same.
      return planMail(resolved, target.spec === undefined ? target : { ...target, spec: withCredentials(target.spec, observed.credentials ?? new Map()) }, observed);
    },

    async apply(plan: Plan<MailStep>, target: Target, context: ActuatorContext): Promise<void> {
      const fragmentPath = join(paths.services, `${target.id}.json`);
      for (const step of plan.steps) {
        switch (step.kind) {
          case "remove-dkim":
            await removeFile(join(paths.dkim, `${step.domain}.json`));
            await removeFile(join(paths.dkim, `${step.domain}.key`));
            context.logger.info({ domain: step.domain }, `removed the DKIM key and record of ${step.domain}`);
            break;
          case "write-fragment":
            await ensureDir(paths.services);
            await writeFileAtomic(fragmentPath, step.text, { mode: 0o600 });
            break;
          case "remove-fragment":
            await removeFile(fragmentPath);
            break;
          case "ensure-dkim":
            await ensureDkim(resolved, paths, target.id, step.domain, context.logger);
            break;
          case "fail":
            // Last step: the service's good mailboxes were written above and go live at the
            // commit; the bad ones wait for a spec that fixes them.
            throw new ActuatorError(step.reason, `applying mail for service ${target.id}: ${step.detail}`, { terminal: true });
        }
      }
    },

    async commit(context: ActuatorContext): Promise<void> {
      const { logger } = context;
      const usersDir = dirname(resolved.usersFile);
      for (const dir of [paths.root, paths.services, paths.dkim, resolved.configDir, usersDir]) await removeStaleTempFiles(dir);
      const fragments = await readFragments(paths.services, logger);
      const previousOwners = await readIndex(domainIndex, paths.index, logger);
      const maps = renderMaps(fragments, resolved, previousOwners);
      for (const conflict of maps.conflicts) {
        logger.error({ domain: conflict.domain, owner: conflict.owner, service: conflict.loser }, `domain ${conflict.domain} is claimed by services ${conflict.owner} and ${conflict.loser}; it stays with ${conflict.owner}`);
      }

      await ensureDir(paths.root);
      await ensureDir(resolved.configDir);
      await ensureDir(resolved.queueDirectory);
      await ensureDir(resolved.mailRoot, { uid: resolved.vmailUid, gid: resolved.vmailGid });
      await ensureDir(usersDir, resolved.readerGid === undefined ? undefined : { uid: 0, gid: resolved.readerGid, mode: 0o750 });

      const postfixFiles: Array<readonly [string, string]> = [
        ["main.cf", renderMainCf(resolved, context.server.hostname)],
        ["master.cf", renderMasterCf(resolved)],
        [MAP_FILES.virtualDomains, maps.virtualDomains],
        [MAP_FILES.virtualMailboxes, maps.virtualMailboxes],
        [MAP_FILES.virtualAliases, maps.virtualAliases],
      ];
      const changed: string[] = [];
      for (const [name, text] of postfixFiles) {
        if ((await readText(join(resolved.configDir, name))) !== text) changed.push(name);
      }
      if (changed.length > 0) {
        // The marker goes first: if we die after a file changed and before the reload, the next
        // commit finds the files converged but still reloads.
        if ((await readText(paths.reloadPending)) === undefined) await writeFileAtomic(paths.reloadPending, "postfix files changed; reload pending\n");
        for (const [name, text] of postfixFiles) {
          if (changed.includes(name)) await writeFileAtomic(join(resolved.configDir, name), text, { mode: 0o644 });
        }
      }
      if (await writePasswdFile(resolved.usersFile, maps.dovecotUsers, resolved.readerGid === undefined ? 0o600 : 0o644)) {
        logger.info({ file: resolved.usersFile }, "rewrote the dovecot users file (dovecot re-reads it by itself)");
      }
      const index: MailDomainIndex = { schemaVersion: 1, owners: { ...maps.owners } };
      await writeIfChanged(paths.index, `${JSON.stringify(index, null, 2)}\n`, 0o644);

      if ((await readText(paths.reloadPending)) !== undefined) {
        await reloadPostfix(resolved, context, changed);
        await removeFile(paths.reloadPending);
      }
    },
  };
}
