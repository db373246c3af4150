// A spec that is partly bad: what can be served is applied once, what cannot is reported in the
// plan's `unmet`, and a second plan of the same spec has nothing left to do.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { ActuatorContext, Target } from "@coyote/actuator";
import { unmetOf } from "@coyote/actuator/unmet";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { createXmppActuator, scramSha1Credentials } from "./index.ts";

const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "box.example.net" });
let root: string;
let logger: CoyoteLogger;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-xmpp-partial-"));
  logger = createLogger({ component: "xmppconf-test", file: join(root, "coyote.log") });
});

after(async () => {
  await logger.close();
  await rm(root, { recursive: true, force: true });
});

it("plans nothing the second time for an unchanged, partly bad spec, and still names what is wrong", async () => {
  const options = {
    stateDir: join(root, "state"),
    configDir: join(root, "etc"),
    dataDir: join(root, "data"),
    c2sPorts: [5222],
    s2sPorts: [5269],
    interfaces: ["127.0.0.1"],
    pidFile: join(root, "prosody.pid"),
    logFile: join(root, "prosody.log"),
    prosodyctl: join(root, "no-such-prosodyctl"),
  };
  const actuator = createXmppActuator(options);
  const store = await StateStore.open(options.stateDir);
  const context: ActuatorContext = { stateDir: options.stateDir, store, logger, signal: new AbortController().signal, server };
  // A hand-written file already serves one of the two domains.
  await mkdir(join(options.configDir, "conf.d"), { recursive: true });
  await writeFile(join(options.configDir, "conf.d", "legacy.cfg.lua"), 'VirtualHost "example.net"\n');
  const target: Target = {
    id: "blog",
    spec: ServiceSpec.parse({
      schemaVersion: 1,
      kind: "Service",
      id: "blog",
      domains: [{ name: "example.org" }, { name: "example.net" }],
      xmpp: { users: [
        { username: "alice", domain: "example.org", passwordHash: scramSha1Credentials("alice", Buffer.from("0123456789abcdef")) },
        { username: "bob", domain: "example.org", passwordHash: "{SCRAM-SHA-1}4096,AAAA,AAAA,AAAA" },
      ] },
    }),
  };

  const first = actuator.plan(target, await actuator.observe(target, context), server);
  assert.deepEqual(first.describe, ["write prosody.cfg.lua", "add VirtualHost example.org", "add account alice@example.org"]);
  assert.equal(unmetOf(first)?.reason, "DomainTaken");
  await actuator.apply(first, target, context);

  const second = actuator.plan(target, await actuator.observe(target, context), server);
  assert.deepEqual(second.steps, [], "converged as far as the spec allows: nothing to apply");
  assert.deepEqual(second.describe, []);
  const unmet = unmetOf(second);
  assert.ok(unmet, "what cannot be served is still reported");
  assert.equal(unmet.reason, "DomainTaken");
  assert.equal(
    unmet.message,
    "planning xmpp for service blog: domain example.net is already an xmpp host of a file coyote did not make (conf.d/legacy.cfg.lua); "
      + "user bob@example.org has a malformed {SCRAM-SHA-1} hash (expected <iterations 4096-1000000>,<base64 salt>,<base64 StoredKey>,<base64 ServerKey>)",
  );

  // Once the spec is fixed, nothing is unmet any more.
  const fixed: Target = { id: "blog", spec: ServiceSpec.parse({ ...target.spec, domains: [{ name: "example.org" }], xmpp: { users: [target.spec?.xmpp?.users[0]] } }) };
  const clean = actuator.plan(fixed, await actuator.observe(fixed, context), server);
  assert.equal(unmetOf(clean), undefined);
});
