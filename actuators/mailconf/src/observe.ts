/**
 * What the mail actuator observes of a service: its fragment, who owns the domains it names (the
 * domain index of the last commit), its domains' DKIM files, and the hashes of the secrets its
 * mailboxes name. Only reads.
 */
import type { Stats } from "node:fs";
import { join } from "node:path";
import { errorText, observeFragment, readTextIfExists } from "@coyote/actuator";
import type { ActuatorContext, FileCache, Target } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { readCredentials } from "@coyote/spec";
import { dkimRecordOf, dkimRecordText } from "./dkim.ts";
import { MailconfError } from "./errors.ts";
import { statOrUndefined } from "./files.ts";
import { MailFragment } from "./fragment.ts";
import type { LiveCheck, MailLive } from "./live.ts";
import type { MailPaths } from "./paths.ts";

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
  /** Whether the running daemons serve the service (only when the actuator verifies them). */
  readonly live?: MailLive;
}

/** Orders strings by code unit, as the files list them. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Reads the domain index through its cache.
 * @returns the owners of the last commit; none when the file is missing or damaged.
 */
export async function readIndex(index: FileCache<Record<string, string>>, path: string, logger: CoyoteLogger): Promise<Record<string, string>> {
  try {
    return (await index.read()) ?? {};
  } catch (error) {
    // The index is rebuilt by every commit from the fragments; a damaged one only weakens the
    // check for taken domains until then, and commit's own conflict rule still holds.
    logger.warn({ file: path, err: error }, "the mail domain index is invalid; it is rebuilt at the next commit");
    return {};
  }
}

/**
 * Parses a service's fragment and checks it is the one its file name says.
 * @throws MailconfError `MAILCONF_ERR_FRAGMENT_INVALID` when it is another service's fragment;
 *   SyntaxError or ZodError when it is not a valid fragment at all.
 */
export function parseFragment(text: string, file: string): MailFragment {
  const fragment = MailFragment.parse(JSON.parse(text));
  const id = file.replace(/\.json$/, "");
  if (fragment.id !== id) throw new MailconfError("MAILCONF_ERR_FRAGMENT_INVALID", `the fragment names service ${fragment.id}, not ${id}`);
  return fragment;
}

async function observeDkim(paths: MailPaths, domain: string, selector: string): Promise<DkimObserved> {
  const keyPath = join(paths.dkim, `${domain}.key`);
  const keyStats: Stats | undefined = await statOrUndefined(keyPath);
  const recordText = await readTextIfExists(join(paths.dkim, `${domain}.json`));
  if (keyStats === undefined) return { keyMode: undefined, recordText, expectedRecordText: undefined, keyError: undefined };
  const pem = (await readTextIfExists(keyPath)) ?? "";
  try {
    return { keyMode: keyStats.mode & 0o7777, recordText, expectedRecordText: dkimRecordText(dkimRecordOf(pem, selector)), keyError: undefined };
  } catch (error) {
    return { keyMode: keyStats.mode & 0o7777, recordText, expectedRecordText: undefined, keyError: errorText(error) };
  }
}

/**
 * Observes one service.
 * @param paths the actuator's files.
 * @param domainIndex the cached domain index.
 * @param dkimSelector the selector DKIM records are published under.
 * @param live asks the running daemons, when the actuator verifies them.
 */
export async function observeMail(paths: MailPaths, domainIndex: FileCache<Record<string, string>>, dkimSelector: string, target: Target, context: ActuatorContext, live?: LiveCheck): Promise<MailObserved> {
  const fragmentPath = join(paths.services, `${target.id}.json`);
  const { text, fragment } = await observeFragment(fragmentPath, (t) => parseFragment(t, `${target.id}.json`), context.logger, "mail");
  const domains = new Set([...(target.spec?.mail === undefined ? [] : target.spec.domains.map((d) => d.name)), ...(fragment?.domains ?? [])]);
  const index = await readIndex(domainIndex, paths.index, context.logger);
  const owners: Record<string, string> = {};
  const dkim: Record<string, DkimObserved> = {};
  for (const domain of [...domains].sort(compareStrings)) {
    const owner = index[domain];
    if (owner !== undefined) owners[domain] = owner;
    dkim[domain] = await observeDkim(paths, domain, dkimSelector);
  }
  let credentials: ReadonlyMap<string, string> = new Map();
  if (target.spec !== undefined) {
    const read = await readCredentials(target.spec, (name) => context.store.readSecret(name));
    if (read.missing.length > 0) context.logger.warn({ serviceId: target.id, secrets: read.missing }, "mailbox credentials named by the spec are missing from secrets/");
    credentials = read.hashes;
  }
  const liveState = live !== undefined && target.spec?.mail !== undefined ? await live.check(fragment?.mailboxes.map((m) => m.address) ?? [], context.server.hostname, context.signal) : undefined;
  return { fragmentText: text, fragment, owners, dkim, credentials, ...(liveState === undefined ? {} : { live: liveState }) };
}
