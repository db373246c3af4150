// MailReady tells the truth: through the loop the minion runs, a service is converged only when
// the real Postfix and Dovecot serve it, and otherwise the reason names the daemon.
import assert from "node:assert/strict";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { commitActuator, converge } from "@coyote/actuator";
import type { ActuatorContext } from "@coyote/actuator";
import { ServiceSpec } from "@coyote/spec";
import { freePorts } from "@coyote/testing";
import { createMailActuator } from "./actuator.ts";
import { resolveOptions } from "./options.ts";
import type { MailActuatorOptions, ResolvedOptions } from "./options.ts";
import { hashPassword } from "./password.ts";
import { dovecotRuntime } from "./render-dovecot.ts";
import { findProgram, groupId, IN_CI, makeContext, servingTestsBlocked, startDovecot, startPostfix, stopPid, stopPostfix, tempRoot } from "./test/support.ts";
import { writeSelfSignedChain } from "./test/tls.ts";

const blocked = servingTestsBlocked();
const skip = blocked !== undefined && !IN_CI ? blocked : false;
if (skip !== false) console.error(`\n*** skipping the MailReady tests with real Postfix and Dovecot: ${skip} ***\n`);

describe("MailReady with real Postfix and Dovecot", () => {
  let root = "";
  let cleanup = async () => {};
  let resolved: ResolvedOptions | undefined;
  let context: ActuatorContext;
  let actuator: ReturnType<typeof createMailActuator>;
  let postfixPid: number | undefined;
  let dovecotPid: number | undefined;
  let closeLogger = async () => {};
  const boxes: Array<{ address: string; passwordHash: string }> = [];

  const spec = () => ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "alpha", domains: [{ name: "a.test" }], mail: { mailboxes: boxes } });
  /** One pass of the loop: the reason the condition would carry ("Converged" when True). */
  async function pass(): Promise<{ reason: string; message: string }> {
    const result = await converge(actuator, { id: "alpha", spec: spec() }, context);
    if (result.changed) await commitActuator(actuator, context);
    return result.requeue === undefined ? { reason: "Converged", message: "" } : { reason: result.requeue.reason, message: result.requeue.message };
  }
  /**
   * Passes again, as the minion does when an apply asks to be looked at later, until the service
   * converges or 10 s have gone: the daemons take a moment to see the files a commit wrote.
   */
  async function passUntilConverged(): Promise<{ reason: string; message: string }> {
    const deadline = Date.now() + 10_000;
    let last = await pass();
    while (last.reason !== "Converged" && Date.now() < deadline) {
      await sleep(200);
      last = await pass();
    }
    return last;
  }
  const startBoth = {
    postfix: async (r: ResolvedOptions) => {
      postfixPid = await startPostfix(r.postfixBin, r.configDir, r.queueDirectory, join(root, "postfix.out"));
    },
    dovecot: async (r: ResolvedOptions) => {
      dovecotPid = await startDovecot(r.dovecotConf, dovecotRuntime(r).baseDir, join(root, "dovecot.out"));
    },
  };

  before(async () => {
    if (skip !== false) return;
    if (blocked !== undefined) throw new Error(`CI=true: ${blocked}`);
    ({ dir: root, cleanup } = await tempRoot("coyote-mailready-"));
    const [smtp = 0, imaps = 0] = await freePorts(2);
    const dovecotGid = groupId("dovecot");
    assert.ok(dovecotGid !== undefined, "the dovecot group exists (Debian package dovecot-core)");
    const options: MailActuatorOptions = {
      stateDir: join(root, "state"),
      postfix: { configDir: join(root, "postfix"), queueDirectory: join(root, "queue"), dataDirectory: join(root, "data"), smtpListen: `127.0.0.1:${smtp}`, postfixBin: findProgram("postfix") ?? "/usr/sbin/postfix", maillogFile: join(root, "maillog") },
      dovecot: { usersFile: join(root, "dovecot-users", "passwd"), readerGid: dovecotGid, configFile: join(root, "dovecot", "dovecot.conf"), imapsListen: `127.0.0.1:${imaps}`, doveadmBin: findProgram("doveadm") ?? "/usr/bin/doveadm" },
      mailRoot: join(root, "mail"),
      vmailUid: 5000,
      vmailGid: 5000,
      tlsChainFile: join(root, "tls.pem"),
      verifyDaemons: true,
    };
    resolved = resolveOptions(options);
    actuator = createMailActuator(options);
    context = await makeContext(options.stateDir);
    closeLogger = () => context.logger.close();
    boxes.push({ address: "alice@a.test", passwordHash: await hashPassword("alice-pw") });
  });

  after(async () => {
    if (resolved !== undefined) await stopPostfix(resolved.postfixBin, resolved.configDir, postfixPid);
    if (dovecotPid !== undefined) await stopPid(dovecotPid);
    await closeLogger();
    await cleanup();
  });

  it("names the missing certificate, then Postfix, then Dovecot, while they are down, and is True once both serve the service", { skip }, async () => {
    const noCertificate = await pass();
    assert.equal(noCertificate.reason, "CertificateMissing", "the first apply, with no certificate and nothing running");
    assert.match(noCertificate.message, /no certificate for the mail hostname yet \(.*tls\.pem\)/);
    await writeSelfSignedChain(join(root, "tls.pem"), "mx.test.example", root);
    const postfixDown = await pass();
    assert.equal(postfixDown.reason, "PostfixDown");
    assert.match(postfixDown.message, /postfix is not running/);
    assert.ok(resolved !== undefined);
    await startBoth.postfix(resolved);
    const dovecotDown = await pass();
    assert.equal(dovecotDown.reason, "DovecotDown");
    assert.match(dovecotDown.message, /dovecot is not running \(no live pid in .*master\.pid\)/);
    await startBoth.dovecot(resolved);
    assert.deepEqual(await passUntilConverged(), { reason: "Converged", message: "" });
  });

  it("is pending while a new mailbox is on its way to the daemons, and True after the commit", { skip }, async () => {
    boxes.push({ address: "bob@a.test", passwordHash: await hashPassword("bob-pw") });
    assert.equal((await pass()).reason, "MailPending");
    assert.deepEqual(await passUntilConverged(), { reason: "Converged", message: "" });
  });

  it("flips to DovecotDown and PostfixDown when each daemon dies", { skip }, async () => {
    assert.ok(resolved !== undefined && dovecotPid !== undefined);
    await stopPid(dovecotPid);
    dovecotPid = undefined;
    const dovecotDown = await pass();
    assert.equal(dovecotDown.reason, "DovecotDown", dovecotDown.message);
    await stopPostfix(resolved.postfixBin, resolved.configDir, postfixPid);
    postfixPid = undefined;
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const postfixDown = await pass();
    assert.equal(postfixDown.reason, "PostfixDown", postfixDown.message);
  });
});
