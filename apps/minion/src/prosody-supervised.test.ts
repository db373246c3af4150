// The box's Prosody as `coyote up` runs it: configured by the xmppconf actuator in the state
// folder, run by the daemon supervisor (as the prosody user under root), and XmppReady asking the
// running Prosody. A Prosody killed under the supervisor is noticed and restarted, and the
// condition flips False and back True. Loopback ports only; Prosody is stopped by its process group.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { createXmppActuator, prosodyFileOwner, CONSOLE_LOG, scramSha1Credentials } from "@coyote/actuator-xmppconf";
import { daemonPaths, DaemonSupervisor, findDaemon } from "@coyote/component";
import { createLogger } from "@coyote/log";
import { certificateFileName, proxyRuntimePaths, ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { freePorts, IN_CI, stopPid, waitFor } from "@coyote/testing";

const installed = spawnSync("sh", ["-c", "command -v prosody && command -v prosodyctl && command -v openssl"]).status === 0;

test("a prosody killed under the daemon supervisor is restarted, and XmppReady flips False and back True", { timeout: 120_000, skip: !installed && !IN_CI ? "SKIPPED LOUDLY: prosody or openssl is not installed (Debian packages prosody, openssl)" : false }, async (t) => {
  if (!installed) throw new Error("prosody, prosodyctl and openssl are required with CI=true (tooling/system-deps.json)");
  const root = await mkdtemp(join(tmpdir(), "coyote-prosody-supervised-"));
  // The test's folder stands for the checkout; the state folder in it is the store's, 0700.
  await chmod(root, 0o755);
  const stateDir = join(root, "state");
  const store = await StateStore.open(stateDir);
  const logger = createLogger({ component: "minion", file: join(root, "minion.log"), level: "silent" });
  const [c2sPort = 0, s2sPort = 0] = await freePorts(2);
  const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "box", hostname: "box.example.org" });
  const context: ActuatorContext = { stateDir, store, logger, signal: new AbortController().signal, server };
  const paths = daemonPaths(stateDir);
  const xmppDir = join(stateDir, "xmpp");
  // The layout the minion gives it (bundled.ts), with the running Prosody verified.
  const actuator = createXmppActuator({
    stateDir,
    configDir: join(xmppDir, "prosody"),
    dataDir: join(xmppDir, "data"),
    certificatesDir: join(xmppDir, "certs"),
    c2sPorts: [c2sPort],
    s2sPorts: [s2sPort],
    interfaces: ["127.0.0.1"],
    pidFile: join(xmppDir, "data", "prosody.pid"),
    logFile: CONSOLE_LOG,
    fileOwner: prosodyFileOwner(),
    verifyProsody: true,
  });
  assert.equal(actuator.configFile, paths.prosodyConf, "the supervisor runs the configuration the actuator writes");
  const prosody = findDaemon("prosody");
  assert.ok(prosody);
  const supervisor = new DaemonSupervisor({ stateDir, logger, daemons: [prosody], backoff: { initialMs: 3000, maxMs: 3000, resetAfterMs: 600_000 }, pollMs: 100, readyTimeoutMs: 20_000 });
  const pids = new Set<number>();
  t.after(async () => {
    await supervisor.stop();
    for (const pid of pids) await stopPid(pid, { group: true });
    await logger.close();
    await rm(root, { recursive: true, force: true });
  });

  // The certificate snickers would issue: a self-signed one does for readiness.
  const issued = join(proxyRuntimePaths(stateDir).certs, certificateFileName("chat.example"));
  const made = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=chat.example", "-days", "2", "-keyout", join(root, "key.pem"), "-out", join(root, "cert.pem")], { encoding: "utf8", timeout: 30_000 });
  assert.equal(made.status, 0, made.stderr);
  await writeFile(issued, (await readFile(join(root, "key.pem"), "utf8")) + (await readFile(join(root, "cert.pem"), "utf8")), { mode: 0o600 });

  const target: Target = {
    id: "chat",
    spec: ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "chat", domains: [{ name: "chat.example" }], xmpp: { users: [{ username: "anna", domain: "chat.example", passwordHash: scramSha1Credentials("correct horse") }] } }),
  };
  /** One pass of the minion's loop for the service: the requeue's reason, or "Ready". */
  const xmppReady = async (): Promise<string> => {
    const { changed, requeue } = await converge(actuator, target, context);
    if (changed) await commitActuator(actuator, context);
    return requeue?.reason ?? "Ready";
  };
  const running = () => {
    const state = supervisor.states()[0];
    if (state?.state !== "running" || state.pid === undefined) return undefined;
    pids.add(state.pid);
    return state;
  };

  assert.equal(await xmppReady(), "ProsodyDown", "configured, but no prosody runs yet");
  await supervisor.start();
  const first = await waitFor("prosody to run under the supervisor", () => running(), 30_000);
  await waitFor("XmppReady to turn True", async () => ((await xmppReady()) === "Ready" ? true : undefined), 30_000);

  process.kill(first.pid ?? 0, "SIGKILL");
  // The live check remembers Prosody's answer for a second.
  await sleep(1100);
  assert.equal(await xmppReady(), "ProsodyDown", "the killed prosody is noticed");
  const second = await waitFor("prosody to be restarted", () => {
    const state = running();
    return state !== undefined && state.pid !== first.pid ? state : undefined;
  }, 30_000);
  assert.equal(second.restarts, 1);
  await waitFor("XmppReady to turn True again", async () => ((await xmppReady()) === "Ready" ? true : undefined), 30_000);
});
