/**
 * The mail actuator's commit: the combined Postfix maps and Dovecot users file rebuilt from every
 * service's fragment, and Postfix reloaded when one of its files changed.
 */
import { readdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ActuatorError, errorText, readTextIfExists } from "@coyote/actuator";
import type { ActuatorContext, FileCache } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { removeStaleTempFiles, writeFileAtomic } from "@coyote/spec";
import { writeSignerFiles } from "./dkim-signer.ts";
import { ensureDir, removeFile, runProgram, writeIfChanged, writePasswdFile } from "./files.ts";
import type { MailFragment } from "./fragment.ts";
import { parseFragment, readIndex } from "./observe.ts";
import type { ResolvedOptions } from "./options.ts";
import type { MailDomainIndex, MailPaths } from "./paths.ts";
import { MAP_FILES, renderMainCf, renderMaps, renderMasterCf } from "./render.ts";
import { renderDovecotConf } from "./render-dovecot.ts";

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
    const text = await readTextIfExists(join(dir, name));
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

async function reloadPostfix(options: ResolvedOptions, context: ActuatorContext, changed: readonly string[]): Promise<void> {
  const run = async (command: string) => {
    try {
      return await runProgram(options.postfixBin, ["-c", options.configDir, command], { signal: context.signal, asRoot: true });
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

async function reloadDovecot(options: ResolvedOptions, context: ActuatorContext): Promise<void> {
  let result;
  try {
    result = await runProgram(options.doveadmBin, ["-c", options.dovecotConf, "reload"], { signal: context.signal, timeoutMs: 30_000 });
  } catch (error) {
    // No doveadm: Dovecot is not installed, so nothing runs the file yet.
    context.logger.warn({ file: options.dovecotConf, err: error }, "wrote dovecot.conf; doveadm could not be run to reload it");
    return;
  }
  if (result.code === 0) context.logger.event("CONFIG_RELOADED", { daemon: "dovecot", file: options.dovecotConf }, "dovecot reloaded its configuration");
  else context.logger.info({ file: options.dovecotConf }, "dovecot is not running; its new configuration takes effect when it starts");
}

/**
 * Makes every applied service live: rewrites the combined files whose content changed and reloads
 * Postfix once when one of its files did. Survives being killed halfway: a marker file makes an
 * interrupted reload happen at the next commit.
 * @throws ActuatorError `PostfixUnavailable` or `PostfixReloadFailed`.
 */
export async function commitMail(resolved: ResolvedOptions, paths: MailPaths, domainIndex: FileCache<Record<string, string>>, context: ActuatorContext): Promise<void> {
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
    [MAP_FILES.senderLogins, maps.senderLogins],
  ];
  const changed: string[] = [];
  for (const [name, text] of postfixFiles) {
    if ((await readTextIfExists(join(resolved.configDir, name))) !== text) changed.push(name);
  }
  if (changed.length > 0) {
    // The marker goes first: if we die after a file changed and before the reload, the next
    // commit finds the files converged but still reloads.
    if ((await readTextIfExists(paths.reloadPending)) === undefined) await writeFileAtomic(paths.reloadPending, "postfix files changed; reload pending\n");
    for (const [name, text] of postfixFiles) {
      if (changed.includes(name)) await writeFileAtomic(join(resolved.configDir, name), text, { mode: 0o644 });
    }
  }
  if (await writePasswdFile(resolved.usersFile, maps.dovecotUsers, resolved.readerGid === undefined ? 0o600 : 0o644)) {
    logger.info({ file: resolved.usersFile }, "rewrote the dovecot users file (dovecot re-reads it by itself)");
  }
  await ensureDir(resolved.dovecotDir);
  if (await writeIfChanged(resolved.dovecotConf, renderDovecotConf(resolved, context.server.hostname), 0o644)) await reloadDovecot(resolved, context);
  if (resolved.dkimSigner !== undefined) {
    // The daemon supervisor sees the tables change and has OpenDKIM re-read them (SIGUSR1).
    const signer = await writeSignerFiles(resolved.dkimSigner);
    for (const skipped of signer.skipped) logger.warn({ file: skipped.file }, `not signing with ${skipped.file}: ${skipped.why}`);
    if (signer.changed.length > 0) logger.info({ changed: signer.changed, domains: signer.domains }, "rewrote the dkim signer's files");
  }
  const index: MailDomainIndex = { schemaVersion: 1, owners: { ...maps.owners } };
  await writeIfChanged(paths.index, `${JSON.stringify(index, null, 2)}\n`, 0o644);

  if ((await readTextIfExists(paths.reloadPending)) !== undefined) {
    await reloadPostfix(resolved, context, changed);
    await removeFile(paths.reloadPending);
  }
}
