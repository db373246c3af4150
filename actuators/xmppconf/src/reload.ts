/**
 * `commit`: makes a running Prosody load what the actuator wrote, through prosodyctl's admin
 * shell, and closes the sessions journaled by `apply`. Its bookkeeping in `<stateDir>/xmppconf/`
 * (the digests Prosody last loaded, the sessions still to close) lets it do nothing when nothing
 * changed.
 */
import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { ActuatorError, type ActuatorContext, type DirectoryCache } from "@coyote/actuator";
import { join } from "node:path";
import { writeFileAtomic } from "@coyote/spec";
import { errorText, readText, removeFile, type XmppLayout } from "./files.ts";
import { prosodyPid } from "./live.ts";
import { parseHostList, runCommand, summarize, type CommandResult } from "./prosodyctl.ts";
import { luaString, MAIN_CONFIG_FILE } from "./render.ts";
import type { ObservedHostFile } from "./types.ts";

/** The bookkeeping of `commit` in `<stateDir>/xmppconf/`. */
interface CommitState {
  /** The digest of the configuration Prosody was last made to load. */
  readonly configDigest?: string;
  /** The digest of each VirtualHost's file as Prosody last loaded it, by host. */
  readonly hosts?: Readonly<Record<string, string>>;
}

/** The accounts whose sessions are still to be closed (JIDs), from the journal `apply` writes. */
export async function readJournal(layout: XmppLayout): Promise<string[]> {
  const text = await readText(layout.closeJournal);
  if (text === undefined) return [];
  try {
    const value = JSON.parse(text) as unknown;
    return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
  } catch {
    // A journal torn by a power loss only loses session closings, never credentials.
    return [];
  }
}

async function readCommitState(layout: XmppLayout): Promise<CommitState> {
  const text = await readText(layout.commitStateFile);
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

/** A digest of everything Prosody reads as configuration: the main file, every host file and their certificates. */
async function configDigest(layout: XmppLayout, hostFiles: DirectoryCache<ObservedHostFile>): Promise<{ digest: string; virtualHosts: Set<string>; hosts: Record<string, string> }> {
  const hash = createHash("sha256");
  hash.update(`${MAIN_CONFIG_FILE}\0${(await readText(layout.configFile)) ?? "\0missing"}\0`);
  const virtualHosts = new Set<string>();
  const hosts: Record<string, string> = {};
  for (const file of (await hostFiles.read()).values()) {
    hash.update(`${file.file}\0${file.content}\0`);
    const fileDigest = createHash("sha256").update(file.content).digest("hex");
    for (const host of file.hosts) {
      virtualHosts.add(host);
      hosts[host] = fileDigest;
    }
  }
  // A renewed certificate is loaded by the same reload as a changed file.
  for (const host of [...virtualHosts].sort()) hash.update(`${host}.pem\0${(await readText(join(layout.certificatesDir, `${host}.pem`))) ?? "\0missing"}\0`);
  return { digest: hash.digest("hex"), virtualHosts, hosts };
}

async function shell(layout: XmppLayout, line: string, context: ActuatorContext): Promise<CommandResult> {
  const { prosodyctl } = layout;
  const signal = AbortSignal.any([context.signal, AbortSignal.timeout(layout.timeoutMs)]);
  let result: CommandResult;
  try {
    result = await runCommand(prosodyctl, ["--config", layout.configFile, "shell", line], signal);
  } catch (error) {
    throw new ActuatorError("ReloadFailed", `committing xmpp: running ${prosodyctl} shell ${line}: ${errorText(error)}`, { cause: error });
  }
  // prosodyctl's exit code is the number of commands that answered with an error.
  if (result.code !== 0) throw new ActuatorError("ReloadFailed", `committing xmpp: ${prosodyctl} shell ${line}: ${summarize(result)}`);
  return result;
}

/**
 * Makes a running Prosody load the configuration on disk and closes the journaled sessions (see
 * createXmppActuator for why `config:reload()` is followed by `host:activate`/`host:deactivate`);
 * a Prosody that is not running is left to read it when it starts.
 * @param pidFileOption the pid file as the options name it, for the log.
 * @throws ActuatorError ReloadFailed when prosodyctl fails, CommitFailed when the bookkeeping cannot be written.
 */
export async function commitXmpp(layout: XmppLayout, hostFiles: DirectoryCache<ObservedHostFile>, pidFileOption: string, context: ActuatorContext): Promise<void> {
  const { digest, virtualHosts, hosts } = await configDigest(layout, hostFiles);
  const state = await readCommitState(layout);
  const pending = await readJournal(layout);
  if (state.configDigest === digest && pending.length === 0) return;

  const pid = await prosodyPid(layout.pidFile);
  if (pid === undefined) {
    // Prosody reads the configuration as it is when it starts, and has no session to close.
    context.logger.info({ pidFile: pidFileOption }, "prosody is not running: nothing to reload");
  } else {
    if (state.configDigest !== digest) {
      await shell(layout, "config:reload()", context);
      const active = new Set(parseHostList((await shell(layout, "host:list()", context)).stdout));
      const activate = [...virtualHosts].filter((h) => !active.has(h)).sort();
      const deactivate = [...active].filter((h) => !virtualHosts.has(h)).sort();
      for (const host of activate) await shell(layout, `host:activate(${luaString(host)})`, context);
      for (const host of deactivate) await shell(layout, `host:deactivate(${luaString(host)})`, context);
      // internal_hashed reads password_hash once, when it is loaded: a running host whose file
      // changed (its accounts moved to another SCRAM hash) loads it again to verify the new ones.
      const changed = [...virtualHosts].filter((h) => active.has(h) && state.hosts?.[h] !== hosts[h]).sort();
      for (const host of changed) await shell(layout, `module:reload("auth_internal_hashed", ${luaString(host)})`, context);
      context.logger.info({ pid, activated: activate, deactivated: deactivate, reloadedAuth: changed }, "prosody configuration reloaded");
    }
    // A batch of a few hundred closings per call keeps the admin shell's input line short.
    for (let i = 0; i < pending.length; i += 200) {
      const batch = pending.slice(i, i + 200);
      await shell(layout, batch.map((jid) => `c2s:close(${luaString(jid)}, "Account changed")`).join("; "), context);
    }
    if (pending.length > 0) context.logger.info({ pid, jids: pending }, "closed the sessions of removed or changed xmpp accounts");
  }
  try {
    await mkdir(layout.bookDir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(layout.commitStateFile, `${JSON.stringify({ configDigest: digest, hosts } satisfies CommitState)}\n`, { mode: 0o600 });
    if (pending.length > 0) await removeFile(layout.closeJournal);
  } catch (error) {
    throw new ActuatorError("CommitFailed", `committing xmpp: writing ${layout.bookDir}: ${errorText(error)}`, { cause: error });
  }
}
