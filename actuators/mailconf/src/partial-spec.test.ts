// A spec that is partly bad: the good mailboxes are applied once, the bad one is reported in the
// plan's `unmet`, and a second plan of the same spec has nothing left to do.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { ActuatorContext, Target } from "@coyote/actuator";
import { unmetOf } from "@coyote/actuator/unmet";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ServerSpec, ServiceSpec, StateStore } from "@coyote/spec";
import { createMailActuator } from "./actuator.ts";
import { hashPassword } from "./password.ts";

const server = ServerSpec.parse({ schemaVersion: 1, kind: "Server", name: "test", hostname: "mx.test.example" });
let root: string;
let logger: CoyoteLogger;

before(async () => {
  root = await mkdtemp(join(tmpdir(), "coyote-mail-partial-"));
  logger = createLogger({ component: "mailconf-test", file: join(root, "coyote.log") });
});

after(async () => {
  await logger.close();
  await rm(root, { recursive: true, force: true });
});

it("plans nothing the second time for an unchanged, partly bad spec, and still names the bad mailbox", async () => {
  const actuator = createMailActuator({
    stateDir: join(root, "state"),
    postfix: { configDir: join(root, "postfix"), queueDirectory: join(root, "queue"), dataDirectory: join(root, "data"), smtpListen: "127.0.0.1:2525" },
    dovecot: { usersFile: join(root, "dovecot", "passwd") },
    mailRoot: join(root, "mail"),
    vmailUid: 5000,
    vmailGid: 5000,
  });
  const store = await StateStore.open(join(root, "state"));
  const context: ActuatorContext = { stateDir: store.root, store, logger, signal: new AbortController().signal, server };
  const target: Target = {
    id: "gamma",
    spec: ServiceSpec.parse({
      schemaVersion: 1,
      kind: "Service",
      id: "gamma",
      domains: [{ name: "c.test" }],
      mail: { mailboxes: [
        { address: "dave@c.test", passwordHash: await hashPassword("dave-pw") },
        { address: "erin@c.test", passwordHash: "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo" },
      ] },
    }),
  };

  const first = actuator.plan(target, await actuator.observe(target, context), server);
  assert.deepEqual(first.steps.map((s) => s.kind), ["write-fragment", "ensure-dkim"], "the good mailbox and the domain's key");
  assert.equal(unmetOf(first)?.reason, "UnsupportedPasswordHash");
  await actuator.apply(first, target, context);

  const second = actuator.plan(target, await actuator.observe(target, context), server);
  assert.deepEqual(second.steps, [], "converged as far as the spec allows: nothing to apply");
  assert.deepEqual(second.describe, []);
  const unmet = unmetOf(second);
  assert.ok(unmet, "the bad mailbox is still reported");
  assert.equal(unmet.reason, "UnsupportedPasswordHash");
  assert.match(unmet.message, /^planning mail for service gamma: unsupported password hash for erin@c\.test \(.*; the mailbox is not created\)$/);
  assert.doesNotMatch(unmet.message, /c2FsdHNhbHQ/, "the hash itself is not echoed");
});
