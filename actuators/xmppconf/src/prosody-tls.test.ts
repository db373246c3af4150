// A real Prosody 0.12 as the box runs it: TLS required with the certificates issued for its
// VirtualHosts (by a CA of the test's own, which the clients trust), SCRAM only, registration
// closed, its files laid out in the state folder, and, when the test runs as root, Prosody running
// as the prosody user. Started here on loopback ports; stopped by its pid.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { after, before, describe, it } from "node:test";
import { commitActuator, converge, type ActuatorContext, type Target } from "@coyote/actuator";
import { grantPassage } from "@coyote/component";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { certificateFileName, proxyRuntimePaths, ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { xml, type Client } from "@xmpp/client";
import { CONSOLE_LOG, createXmppActuator, prosodyFileOwner, scramSha1Credentials, type XmppActuator, type XmppActuatorOptions } from "./index.ts";
import { makeTestCa, type TestCa } from "./test/ca.ts";
import { freePort, login, pings, plainStream, startProsody, starttlsSerial, type RunningProsody } from "./test/prosody.ts";

const hasProsody = spawnSync("sh", ["-c", "command -v prosody && command -v prosodyctl && command -v openssl"]).status === 0;

function service(id: string, domains: string[], users: { username: string; domain: string; passwordHash: string }[]): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id, domains: domains.map((name) => ({ name })), xmpp: { users } });
}

describe("prosody serving over TLS, as the box runs it", { skip: !hasProsody && process.env.CI !== "true" ? "prosody or openssl is not installed (SKIPPED LOUDLY: install the Debian packages prosody and openssl)" : false }, () => {
  let root: string;
  let stateDir: string;
  let actuator: XmppActuator;
  let options: XmppActuatorOptions;
  let context: ActuatorContext;
  let logger: CoyoteLogger;
  let ca: TestCa;
  let prosody: RunningProsody | undefined;
  let c2sPort: number;
  const owner = prosodyFileOwner();
  const clients: Client[] = [];
  const pw = { alice: "alice-secret", bob: "bob-secret" };
  const alpha: Target = { id: "alpha", spec: service("alpha", ["example.org"], [
    { username: "alice", domain: "example.org", passwordHash: scramSha1Credentials(pw.alice) },
    { username: "bob", domain: "example.org", passwordHash: scramSha1Credentials(pw.bob) },
  ]) };
  const outputFile = () => join(root, "prosody.out");
  const issued = (domain: string) => join(proxyRuntimePaths(stateDir).certs, certificateFileName(domain));

  async function connect(username: string, password: string): Promise<Client> {
    const result = await login(c2sPort, "example.org", username, password);
    assert.ok(result.ok, `${username} logs in: ${result.ok ? "" : result.error}`);
    clients.push(result.client);
    return result.client;
  }

  async function start(): Promise<RunningProsody> {
    return startProsody({ configFile: actuator.configFile, outputFile: outputFile(), logFile: outputFile(), c2sPort, adminSocket: join(options.dataDir, "prosody.sock"), ...(owner === undefined ? {} : { user: owner }) });
  }

  before(async () => {
    if (!hasProsody) throw new Error("prosody, prosodyctl and openssl are required with CI=true (tooling/system-deps.json)");
    root = await mkdtemp(join(tmpdir(), "coyote-xmpp-tls-"));
    // The test's own folder stands for the checkout; the state folder inside it is 0700.
    await chmod(root, 0o755);
    stateDir = join(root, "state");
    c2sPort = await freePort();
    const xmppDir = join(stateDir, "xmpp");
    // The embedded layout of `coyote up`: everything of Prosody's under <state>/xmpp/.
    options = {
      stateDir,
      configDir: join(xmppDir, "prosody"),
      dataDir: join(xmppDir, "data"),
      c2sPorts: [c2sPort],
      s2sPorts: [await freePort()],
      interfaces: ["127.0.0.1"],
      pidFile: join(xmppDir, "data", "prosody.pid"),
      logFile: CONSOLE_LOG,
      logLevel: "debug",
      verifyProsody: true,
      ...(owner === undefined ? {} : { fileOwner: owner }),
    };
    actuator = createXmppActuator(options);
    logger = createLogger({ component: "xmppconf-test", file: join(root, "coyote.log") });
    const store = await StateStore.open(stateDir);
    // As the daemon supervisor does before it starts Prosody as its own user.
    if (owner !== undefined) await grantPassage(stateDir, ["prosody"]);
    const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.net" });
    context = { stateDir, store, logger, signal: new AbortController().signal, server };
    ca = await makeTestCa(join(root, "ca"));
    // The clients trust the test's CA, as a customer's client trusts the box's.
    setDefaultCACertificates([...getCACertificates("default"), ca.certificate]);
  });

  after(async () => {
    for (const c of clients) await c.stop().catch(() => undefined);
    await prosody?.stop();
    setDefaultCACertificates(getCACertificates("bundled"));
    await logger.close();
    await rm(root, { recursive: true, force: true });
  });

  it("says XmppReady False while no certificate is issued and prosody does not run, naming both", async () => {
    const { requeue } = await converge(actuator, alpha, context);
    assert.equal(requeue?.reason, "ProsodyDown");
    assert.match(requeue.message, /prosody is not running/);
    assert.match(requeue.message, /no certificate is issued for example\.org yet/);
  });

  it("copies the issued certificate for prosody alone, and lays prosody's files out for its user without opening the state folder", async () => {
    await ca.issue("example.org", issued("example.org"));
    await converge(actuator, alpha, context);
    await commitActuator(actuator, context);
    const copy = join(stateDir, "xmpp", "certs", "example.org.pem");
    assert.equal(await readFile(copy, "utf8"), await readFile(issued("example.org"), "utf8"));
    const mode = async (path: string) => (await stat(path)).mode & 0o777;
    assert.equal(await mode(copy), 0o600, "the key is readable by its owner only");
    assert.equal(await mode(join(stateDir, "xmpp", "prosody", "prosody.cfg.lua")), 0o640);
    assert.equal(await mode(join(stateDir, "xmpp", "prosody")), 0o750);
    assert.equal(await mode(join(stateDir, "secrets")), 0o700);
    if (owner !== undefined) {
      assert.equal((await stat(copy)).uid, owner.uid, "the copy is prosody's");
      assert.equal((await stat(join(stateDir, "xmpp", "prosody", "prosody.cfg.lua"))).gid, owner.gid);
      assert.equal(await mode(stateDir), 0o710, "the state folder's ACL lets prosody pass through, without listing it");
      // What prosody's user can and cannot do, asked of the kernel as that user.
      const as = (script: string) => spawnSync("sh", ["-c", script], { uid: owner.uid, gid: owner.gid, encoding: "utf8" }).status;
      assert.equal(as(`cat ${JSON.stringify(copy)} >/dev/null`), 0, "prosody reads its key");
      assert.notEqual(as(`ls ${JSON.stringify(stateDir)} >/dev/null`), 0, "prosody cannot list the state folder");
      assert.notEqual(as(`cat ${JSON.stringify(issued("example.org"))} >/dev/null`), 0, "prosody cannot read the proxy's certificates");
      assert.notEqual(as(`ls ${JSON.stringify(join(stateDir, "secrets"))} >/dev/null`), 0, "nor the secrets");
    }
  });

  it("starts on that configuration, and XmppReady turns True once prosody serves the VirtualHost", async () => {
    prosody = await start();
    const { changed, requeue } = await converge(actuator, alpha, context);
    assert.equal(requeue, undefined, requeue?.message);
    assert.equal(changed, false);
  });

  it("lets two users log in over STARTTLS with the host's certificate, with SCRAM only, and exchange a message", async () => {
    const result = await login(c2sPort, "example.org", "alice", pw.alice);
    assert.ok(result.ok, result.ok ? "" : result.error);
    clients.push(result.client);
    assert.ok(result.mechanisms.includes("SCRAM-SHA-1"), result.mechanisms.join(", "));
    assert.deepEqual(result.mechanisms.filter((m) => !m.startsWith("SCRAM-")), [], "no mechanism but SCRAM is offered, even over TLS");
    const alice = result.client;
    const bob = await connect("bob", pw.bob);
    const got = new Promise<string>((resolve) => {
      bob.on("stanza", (stanza: { is(name: string): boolean; getChildText(name: string): string | null }) => {
        if (stanza.is("message")) resolve(stanza.getChildText("body") ?? "");
      });
    });
    await bob.send(xml("presence"));
    await alice.send(xml("message", { to: "bob@example.org/test", type: "chat" }, xml("body", {}, "hello over tls")));
    assert.equal(await Promise.race([got, new Promise<string>((resolve) => setTimeout(() => resolve("(nothing within 5 s)"), 5000))]), "hello over tls");
  });

  it("serves a renewed certificate after one reload, without a restart", async () => {
    assert.ok(prosody);
    const before = await starttlsSerial(c2sPort, "example.org");
    const reloads = await prosody.reloads();
    await ca.issue("example.org", issued("example.org"));
    const { changed } = await converge(actuator, alpha, context);
    assert.equal(changed, true, "the new certificate is copied");
    await commitActuator(actuator, context);
    const after = await starttlsSerial(c2sPort, "example.org");
    assert.notEqual(after, before);
    assert.equal(await prosody.reloads(), reloads + 1);
    assert.equal((await converge(actuator, alpha, context)).changed, false);
    await connect("alice", pw.alice);
  });

  it("refuses a wrong password and an unknown user", async () => {
    for (const [user, password] of [["alice", "not-her-password"], ["mallory", "anything"]] as const) {
      const result = await login(c2sPort, "example.org", user, password);
      if (result.ok) await result.client.stop();
      assert.equal(result.ok ? "logged in" : result.error, "not-authorized");
    }
  });

  it("refuses to authenticate a client that does not start TLS, and offers it no mechanism", async () => {
    const { features, answer } = await plainStream(c2sPort, "example.org", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbGljZSxyPWFiY2RlZg==</auth>");
    assert.match(features, /<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]><required\/><\/starttls>/, features);
    assert.doesNotMatch(features, /<mechanism>/, "no SASL mechanism before TLS");
    assert.match(answer, /encryption-required|policy-violation/, answer);
    assert.doesNotMatch(answer, /<challenge/);
  });

  it("requires TLS of a peer server too, and refuses its dialback before it", async () => {
    const s2sPort = options.s2sPorts[0] ?? 0;
    const { features, answer } = await plainStream(s2sPort, "example.org", "<db:result from='peer.test' to='example.org'>abcdef</db:result>", "jabber:server");
    assert.match(features, /<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]><required\/><\/starttls>/, features);
    assert.doesNotMatch(answer, /type=['"]valid['"]/, answer);
  });

  it("serves group chat only once the spec asks for it, and XmppReady waits for its service", async () => {
    const alice = await connect("alice", pw.alice);
    const join = (room: string) => {
      const answer = new Promise<string>((resolve) => {
        alice.on("stanza", (stanza: { is(name: string): boolean; attrs: Record<string, string> }) => {
          if (stanza.is("presence") && stanza.attrs.from?.startsWith(`${room}@`)) resolve(stanza.attrs.type ?? "available");
        });
      });
      void alice.send(xml("presence", { to: `${room}@conference.example.org/alice` }, xml("x", { xmlns: "http://jabber.org/protocol/muc" })));
      return Promise.race([answer, new Promise<string>((resolve) => setTimeout(() => resolve("(no answer within 5 s)"), 5000))]);
    };
    assert.equal(await join("before"), "error", "no group chat service without the spec asking");

    const spec = alpha.spec;
    assert.ok(spec?.xmpp);
    const chatty: Target = { id: "alpha", spec: { ...spec, xmpp: { ...spec.xmpp, groupChat: true } } };
    await converge(actuator, chatty, context);
    await commitActuator(actuator, context);
    const { requeue } = await converge(actuator, chatty, context);
    assert.equal(requeue, undefined, requeue?.message);
    assert.equal(await join("after"), "available", "the room is made and alice is in it");
  });

  it("gives prosody's folders back to its group when they were closed (under root)", { skip: owner === undefined ? "prosody runs as the test's own user: nothing is shared" : false }, async () => {
    await chmod(join(stateDir, "xmpp", "certs"), 0o700);
    const { changed, plan } = await converge(actuator, alpha, context);
    assert.equal(changed, true);
    assert.ok(plan.describe.includes("give prosody's folders back to its group"), plan.describe.join("; "));
    assert.equal((await stat(join(stateDir, "xmpp", "certs"))).mode & 0o777, 0o750);
    assert.equal((await converge(actuator, alpha, context)).changed, false);
  });

  it("closes registration: none is offered, and a logged-in user's register request is refused", async () => {
    const { features } = await plainStream(c2sPort, "example.org", "</stream:stream>");
    assert.doesNotMatch(features, /iq-register/);
    const alice = await connect("alice", pw.alice);
    await assert.rejects(alice.iqCaller.request(xml("iq", { type: "set", to: "example.org" }, xml("query", { xmlns: "jabber:iq:register" }, xml("username", {}, "mallory"), xml("password", {}, "x"))), 5000), /service-unavailable|not-allowed|feature-not-implemented/);
    const mallory = await login(c2sPort, "example.org", "mallory", "x");
    if (mallory.ok) await mallory.client.stop();
    assert.equal(mallory.ok, false, "no account was made");
    assert.equal(await pings(alice, "example.org"), true);
  });
});
