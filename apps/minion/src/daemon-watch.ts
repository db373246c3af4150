// The minion's look at the box's daemons: the conditions of mail, XMPP and DNS say whether the
// running daemon serves, so a daemon that dies, comes back or is started for the first time calls
// for every service to be looked at again (a resync: level-based, nothing is missed).
import type { CoyoteLogger } from "@coyote/log";
import { readDaemonStatesFile } from "@coyote/component";

/** What a change means to the minion: each daemon's state and pid, in catalogue order. */
function signatureOf(daemons: readonly { name: string; state: string; pid?: number }[]): string {
  return daemons.map((d) => `${d.name}:${d.state}:${String(d.pid ?? "")}`).join(",");
}

/**
 * Reads `run/daemons.json` (the daemon supervisor's, or the installer's for systemd) every
 * `pollMs`, and calls `changed` when a daemon's state or pid differs from the last read. The first
 * read only sets the baseline. An unreadable file is logged once and counts as no change.
 * @returns a function that stops the watch.
 */
export function watchDaemons(stateDir: string, logger: CoyoteLogger, changed: () => void, pollMs = 2000): () => void {
  let last: string | undefined;
  let complained = false;
  let reading = false;
  const look = async () => {
    if (reading) return;
    reading = true;
    try {
      const file = await readDaemonStatesFile(stateDir);
      const now = signatureOf(file?.daemons ?? []);
      complained = false;
      if (last !== undefined && now !== last) {
        logger.info({ daemons: now }, "a daemon's state changed: looking at every service again");
        changed();
      }
      last = now;
    } catch (error) {
      if (!complained) logger.event("ERROR", { err: error }, "the daemons' states are unreadable; their changes are not seen until they are");
      complained = true;
    } finally {
      reading = false;
    }
  };
  void look();
  const timer = setInterval(() => void look(), pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
