/**
 * Whether the running Prosody serves a service: the truth behind `XmppReady`. Prosody must be
 * running (a live pid in its pid file) and its admin shell must list the service's VirtualHosts
 * as active. Only reads; every command has a deadline.
 */
import { LiveMemo } from "@coyote/actuator";
import { isPidAlive } from "@coyote/spec";
import { errorText, readText, type XmppLayout } from "./files.ts";
import { parseHostList, runCommand, summarize } from "./prosodyctl.ts";

/** What the running Prosody serves: `down` says why it does not run, `hosts` what it has activated. */
export interface ProsodyLive {
  /** Why Prosody is not serving, or undefined when it answers. */
  readonly down: string | undefined;
  /** The VirtualHosts it has activated (empty while it is down). */
  readonly hosts: ReadonlySet<string>;
}

const TIMEOUT_MS = 10_000;

/** The pid of a running Prosody, read from its pid file; undefined when none runs. */
export async function prosodyPid(pidFile: string): Promise<number | undefined> {
  const text = await readText(pidFile);
  const pid = Number(text?.trim());
  return Number.isInteger(pid) && pid > 0 && isPidAlive(pid) ? pid : undefined;
}

/** Asks the running Prosody, through prosodyctl's admin shell, which VirtualHosts it serves. */
export class LiveCheck {
  readonly #layout: XmppLayout;
  // What Prosody's admin shell lists is the same for every service: asked at most once a second.
  readonly #memo = new LiveMemo<ProsodyLive>();

  /** Makes a check of one actuator's Prosody. */
  constructor(layout: XmppLayout) {
    this.#layout = layout;
  }

  /** Forgets the last answer: after a commit the next check asks again. */
  forget(): void {
    this.#memo.forget();
  }

  /**
   * What Prosody serves now. Whether it runs is looked at every time (its pid file and pid); what
   * its admin shell lists is remembered for a second across services, for the same pid only, so
   * that a Prosody that died or was restarted meanwhile is never reported from the memory.
   */
  async check(signal: AbortSignal): Promise<ProsodyLive> {
    const { pidFile } = this.#layout;
    const pid = await prosodyPid(pidFile);
    if (pid === undefined) {
      this.#memo.forget();
      return { down: `prosody is not running (no live pid in ${pidFile})`, hosts: new Set<string>() };
    }
    return this.#memo.get(pid, () => this.#ask(signal));
  }

  async #ask(signal: AbortSignal): Promise<ProsodyLive> {
    const { prosodyctl, configFile } = this.#layout;
    const none = new Set<string>();
    try {
      const result = await runCommand(prosodyctl, ["--config", configFile, "shell", "host:list()"], AbortSignal.any([signal, AbortSignal.timeout(TIMEOUT_MS)]));
      if (result.code !== 0) return { down: `prosody does not answer its admin shell (${prosodyctl} shell host:list(): ${summarize(result)})`, hosts: none };
      return { down: undefined, hosts: new Set(parseHostList(result.stdout)) };
    } catch (error) {
      return { down: `prosody cannot be asked (${prosodyctl}: ${errorText(error)})`, hosts: none };
    }
  }
}
