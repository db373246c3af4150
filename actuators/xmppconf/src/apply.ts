/**
 * Applying a plan: each step writes or removes one file, atomically, in the plan's order (session
 * closings are journaled before the accounts change; a host file, the ownership record, goes last).
 */
import { chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ActuatorError, requeueAfter, type ActuatorContext, type Plan, type Requeue, type Target } from "@coyote/actuator";
import { removeStaleTempFiles, writeFileAtomic } from "@coyote/spec";
import { ACCOUNT_MODE, CERTIFICATE_MODE, CONFIG_MODE, ensureDataDir, errorText, PROSODY_DIR_MODE, removeDirIfEmpty, removeFile, sharedFolders, shareWithProsody, type XmppLayout } from "./files.ts";
import { readJournal } from "./reload.ts";
import { accountsDir, encodeDataPathPart, HOST_FILE_SUFFIX } from "./render.ts";
import type { XmppStep } from "./types.ts";

/**
 * Carries out a plan's steps for one service.
 * @returns a requeue when the plan waits for Prosody (its `await-prosody` step).
 * @throws ActuatorError ApplyFailed naming the file that could not be written or removed.
 */
export async function applyXmppPlan(layout: XmppLayout, plan: Plan<XmppStep>, target: Target, context: ActuatorContext): Promise<Requeue | undefined> {
  const { bookDir, closeJournal, configFile, dataDir, hostsDir, owner, certificatesDir } = layout;
  let requeue: Requeue | undefined;
  const step = (what: string, error: unknown) =>
    error instanceof ActuatorError ? error : new ActuatorError("ApplyFailed", `applying xmpp for service ${target.id}: ${what}: ${errorText(error)}`, { cause: error });
  const cleaned = new Set<string>();
  const clean = async (dir: string) => {
    if (cleaned.has(dir)) return;
    cleaned.add(dir);
    await removeStaleTempFiles(dir);
  };
  for (const s of plan.steps) {
    switch (s.kind) {
      case "write-main-config":
        try {
          await prosodyFolders(layout);
          await ensureDataDir(dataDir, owner);
          await writeFileAtomic(configFile, s.content, { mode: CONFIG_MODE });
          await shareWithProsody(configFile, CONFIG_MODE, owner);
        } catch (error) {
          throw step(`writing ${configFile}`, error);
        }
        break;
      case "write-host": {
        const path = join(hostsDir, `${s.domain}${HOST_FILE_SUFFIX}`);
        try {
          await prosodyFolders(layout);
          await clean(hostsDir);
          await writeFileAtomic(path, s.content, { mode: CONFIG_MODE });
          await shareWithProsody(path, CONFIG_MODE, owner);
        } catch (error) {
          throw step(`writing ${path}`, error);
        }
        break;
      }
      case "close-sessions":
        // Journaled before the accounts change, so that a kill in between still closes them.
        try {
          const pending = new Set([...(await readJournal(layout)), ...s.jids]);
          await mkdir(bookDir, { recursive: true, mode: 0o700 });
          await writeFileAtomic(closeJournal, `${JSON.stringify([...pending].sort())}\n`, { mode: 0o600 });
        } catch (error) {
          throw step(`writing ${closeJournal}`, error);
        }
        break;
      case "write-account": {
        const dir = accountsDir(dataDir, s.domain);
        const path = join(dir, s.file);
        try {
          await ensureDataDir(dataDir, owner);
          await ensureDataDir(join(dataDir, encodeDataPathPart(s.domain)), owner);
          await ensureDataDir(dir, owner);
          await clean(dir);
          await writeFileAtomic(path, s.content, { mode: ACCOUNT_MODE });
          if (owner !== undefined) await chown(path, owner.uid, owner.gid);
        } catch (error) {
          throw step(`writing ${path}`, error);
        }
        break;
      }
      case "remove-account": {
        const path = join(accountsDir(dataDir, s.domain), s.file);
        try {
          await removeFile(path);
        } catch (error) {
          throw step(`removing ${path}`, error);
        }
        break;
      }
      case "share-folders":
        try {
          await prosodyFolders(layout);
        } catch (error) {
          throw step("giving prosody's folders to its group", error);
        }
        break;
      case "write-certificate": {
        const path = join(certificatesDir, `${s.domain}.pem`);
        try {
          await prosodyFolders(layout);
          await clean(certificatesDir);
          await writeFileAtomic(path, s.content, { mode: CERTIFICATE_MODE });
          if (owner !== undefined) await chown(path, owner.uid, owner.gid);
        } catch (error) {
          throw step(`writing ${path}`, error);
        }
        break;
      }
      case "remove-certificate": {
        const path = join(certificatesDir, `${s.domain}.pem`);
        try {
          await removeFile(path);
        } catch (error) {
          throw step(`removing ${path}`, error);
        }
        break;
      }
      case "await-prosody":
        // Not a change: the service is not served yet, so the condition says why and it is looked at again.
        requeue = requeueAfter(s.afterMs, s.reason, s.message);
        break;
      case "remove-host": {
        const path = join(hostsDir, `${s.domain}${HOST_FILE_SUFFIX}`);
        try {
          // Only what we made: the accounts folder and the host's folder if nothing else
          // (rosters, archives Prosody keeps) is left in them.
          const dir = accountsDir(dataDir, s.domain);
          await removeStaleTempFiles(dir, { all: true });
          await removeDirIfEmpty(dir);
          await removeDirIfEmpty(join(dataDir, encodeDataPathPart(s.domain)));
          await removeFile(path);
        } catch (error) {
          throw step(`removing ${path}`, error);
        }
        break;
      }
    }
  }
  context.logger.debug({ serviceId: target.id, steps: plan.describe }, "xmpp changes applied");
  return requeue;
}

/**
 * Makes Prosody's folders (configuration, `conf.d/`, certificates and the folder holding them)
 * and, when Prosody runs as another user, gives them to its group (0750): Prosody reads them, and
 * nothing else of the state folder, through which its user is given passage by whoever starts it
 * (the daemon supervisor, or the installer for systemd).
 */
async function prosodyFolders(layout: XmppLayout): Promise<void> {
  const { hostsDir, certificatesDir, owner } = layout;
  for (const dir of [hostsDir, certificatesDir]) await mkdir(dir, { recursive: true, mode: PROSODY_DIR_MODE });
  if (owner === undefined) return;
  const shared = sharedFolders(layout);
  for (const dir of shared) await shareWithProsody(dir, PROSODY_DIR_MODE, owner);
}
