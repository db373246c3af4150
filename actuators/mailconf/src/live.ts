/**
 * Whether the running daemons serve a service's mail: the truth behind `MailReady`. Postfix must
 * be running with no reload pending (the maps on disk are the ones it loaded), Dovecot's running
 * auth service must know every mailbox of the service, and the DKIM signer, when the box has one,
 * must answer on its milter socket (Postfix holds mail back while it does not). Only reads; every command has a
 * deadline.
 */
import { connect } from "node:net";
import { join } from "node:path";
import { errorText, readTextIfExists } from "@coyote/actuator";
import { isPidAlive } from "@coyote/spec";
import { milterAddresses } from "./dkim-signer.ts";
import { dovecotRuntime } from "./render-dovecot.ts";
import { runProgram, statOrUndefined } from "./files.ts";
import { tlsChainFileOf, type ResolvedOptions } from "./options.ts";
import type { MailPaths } from "./paths.ts";

/** What the live check found: undefined when the daemon serves the service, else why not. */
export interface MailLive {
  /** Why Postfix does not serve the service's current maps, when it does not. */
  readonly postfix: string | undefined;
  /** Why Dovecot does not serve the service's mailboxes, when it does not. */
  readonly dovecot: string | undefined;
  /** Why the DKIM signer does not answer Postfix (mail then waits), when the box has one and it does not. */
  readonly signer?: string;
  /** Why there is no certificate for TLS, when there is none. */
  readonly certificate?: string;
}

const TIMEOUT_MS = 10_000;
const SIGNER_TIMEOUT_MS = 2000;

/** Whether something accepts a connection at a milter address Postfix names (`unix:PATH` or `inet:HOST:PORT`). */
function milterAnswers(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const inet = /^inet:(.+):([0-9]+)$/.exec(address);
    const socket = inet ? connect(Number(inet[2]), inet[1]) : connect(address.replace(/^unix:/, ""));
    const done = (why: string | undefined) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(SIGNER_TIMEOUT_MS, () => done(`no answer within ${String(SIGNER_TIMEOUT_MS)} ms`));
    socket.once("connect", () => done(undefined));
    socket.once("error", (error) => done(errorText(error)));
  });
}
// `doveadm user` exits with EX_NOUSER when a user is unknown, EX_TEMPFAIL when it cannot ask.
const EX_NOUSER = 67;

function lastLine(text: string): string {
  return text.trim().split("\n").slice(-1)[0]?.slice(0, 300) ?? "";
}

/** Asks the running daemons, through their own tools, whether they serve a service's mail. */
export class LiveCheck {
  readonly #options: ResolvedOptions;
  readonly #paths: MailPaths;
  #postfix: Promise<string | undefined> | undefined;

  /** Makes a check for one actuator's Postfix instance and Dovecot configuration. */
  constructor(options: ResolvedOptions, paths: MailPaths) {
    this.#options = options;
    this.#paths = paths;
  }

  /**
   * Why the Postfix instance is not running, or undefined when it is. Postfix's state is the same
   * for every service, so the services of a batch observed at once share one question.
   */
  #postfixDown(signal: AbortSignal): Promise<string | undefined> {
    if (this.#postfix !== undefined) return this.#postfix;
    const { postfixBin, configDir } = this.#options;
    const why = runProgram(postfixBin, ["-c", configDir, "status"], { signal, timeoutMs: TIMEOUT_MS, asRoot: true }).then(
      (result) => (result.code === 0 ? undefined : `postfix is not running (postfix -c ${configDir} status: ${lastLine(`${result.stdout}\n${result.stderr}`) || `exit ${String(result.code)}`})`),
      (error: unknown) => `postfix cannot be asked (${postfixBin}: ${errorText(error)})`,
    );
    this.#postfix = why;
    void why.finally(() => {
      this.#postfix = undefined;
    });
    return why;
  }

  /** Why Dovecot does not know all of `addresses`, or undefined when it does. */
  async #dovecotMissing(addresses: readonly string[], signal: AbortSignal): Promise<string | undefined> {
    // Its master's pid file first: with Dovecot gone, doveadm waits for its auth socket to answer.
    const pidFile = join(dovecotRuntime(this.#options).baseDir, "master.pid");
    const pid = Number((await readTextIfExists(pidFile))?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !isPidAlive(pid)) return `dovecot is not running (no live pid in ${pidFile})`;
    if (addresses.length === 0) return undefined;
    const { doveadmBin, dovecotConf } = this.#options;
    let result;
    try {
      result = await runProgram(doveadmBin, ["-c", dovecotConf, "user", "-u", ...addresses], { signal, timeoutMs: TIMEOUT_MS });
    } catch (error) {
      return `dovecot cannot be asked (${doveadmBin}: ${errorText(error)})`;
    }
    if (result.code === 0) return undefined;
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code === EX_NOUSER) {
      const unknown = addresses.filter((a) => output.includes(`user ${a} doesn't exist`));
      return `dovecot does not know ${unknown.length > 0 ? unknown.join(", ") : "every mailbox"} yet`;
    }
    // EX_TEMPFAIL and the rest: no running Dovecot to ask, or its auth service cannot read the users.
    return `dovecot is down or cannot look up the mailboxes (doveadm -c ${dovecotConf} user: ${lastLine(output) || `exit ${String(result.code)}`})`;
  }

  /** Why the certificate SMTP, submission and IMAP present is missing, or undefined when it is there. */
  async #certificateMissing(hostname: string | undefined): Promise<string | undefined> {
    const chain = tlsChainFileOf(this.#options, this.#options.myhostname ?? hostname);
    if (chain === undefined) return "no certificate is configured (no mail hostname)";
    try {
      return (await statOrUndefined(chain))?.isFile() === true ? undefined : `no certificate for the mail hostname yet (${chain})`;
    } catch (error) {
      return `the certificate ${chain} cannot be read (${errorText(error)})`;
    }
  }

  /**
   * Checks both daemons, and the certificate they present, for one service.
   * @param addresses the service's mailboxes as last committed.
   * @param hostname the server spec's hostname (the mail hostname unless `myhostname` is set).
   */
  async check(addresses: readonly string[], hostname: string | undefined, signal: AbortSignal): Promise<MailLive> {
    let postfix = await this.#postfixDown(signal);
    if (postfix === undefined && (await readTextIfExists(this.#paths.reloadPending)) !== undefined) postfix = "postfix has not reloaded the latest maps yet";
    const certificate = await this.#certificateMissing(hostname);
    const signer = await this.#signerDown();
    return { postfix, dovecot: await this.#dovecotMissing(addresses, signal), ...(certificate === undefined ? {} : { certificate }), ...(signer === undefined ? {} : { signer }) };
  }

  /** Why the DKIM signer Postfix passes mail through does not answer, or undefined (also when there is none). */
  async #signerDown(): Promise<string | undefined> {
    const signer = this.#options.dkimSigner;
    if (signer === undefined) return undefined;
    const address = milterAddresses(signer).postfix;
    const why = await milterAnswers(address);
    return why === undefined ? undefined : `the DKIM signer (opendkim) does not answer at ${address} (${why}), so mail waits`;
  }
}
