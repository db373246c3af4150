/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return --
   The bad cases edit untyped JSON documents on purpose: each breaks a good document in one place. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ContractError } from "./errors.ts";
import { CONTRACTS, type ContractName, parseJson, parseSpec, validate } from "./validate.ts";

const FP_A = `sha256:${"a".repeat(64)}`;
const FP_B = `sha256:${"b".repeat(64)}`;
const NOW = "2026-11-22T20:00:00.000Z";

/** One good document of every contract: the starting point every bad case breaks in one place. */
const GOOD: Record<ContractName, () => Record<string, unknown>> = {
  server: () => ({
    schemaVersion: 1,
    kind: "Server",
    name: "box one",
    hostname: "box.example.org",
    activated: true,
    signupsOpen: true,
    buddies: [{ name: "buddy", address: "https://buddy.example.net:4443", fingerprint: FP_B }],
    alarms: { email: ["admin@example.org"], webhooks: ["https://hooks.example.org/coyote"] },
  }),
  service: () => ({
    schemaVersion: 1,
    kind: "Service",
    id: "alice-blog",
    domains: [{ name: "alice.example", records: [{ type: "A", name: "www", address: "192.0.2.10" }] }],
    mail: {
      mailboxes: [{ address: "alice@alice.example", passwordHash: "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$c2FsdA$aGFzaA" }],
      aliases: [{ address: "info@alice.example", to: ["alice@alice.example"] }],
    },
    xmpp: { users: [{ username: "alice", domain: "alice.example", passwordHash: "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA" }] },
    web: { hostnames: ["alice.example", "www.alice.example"], backend: { kind: "process", command: ["node", "server.js"], port: 3001 } },
    replication: { authority: FP_A, failover: FP_B },
  }),
  status: () => ({
    schemaVersion: 1,
    id: "alice-blog",
    observedGeneration: 2,
    conditions: [{ type: "Ready", status: "True", reason: "Converged", message: "all actuators converged", observedGeneration: 2, lastTransitionTime: NOW }],
    updatedAt: NOW,
  }),
  stats: () => ({
    schemaVersion: 1,
    component: "snitch-proxy",
    pid: 1234,
    startedAt: NOW,
    writtenAt: NOW,
    process: { rssBytes: 1, heapUsedBytes: 1, uptimeSeconds: 1.5 },
    hosts: {
      "alice.example": {
        requests: 3,
        bytesIn: 10,
        bytesOut: 20,
        status: { "1xx": 0, "2xx": 3, "3xx": 0, "4xx": 0, "5xx": 0 },
        latencyBucketsMs: [1, 10],
        latencyCounts: [1, 2, 0],
        openConnections: 0,
      },
    },
  }),
  alarm: () => ({
    schemaVersion: 1,
    id: "al-12345678",
    key: "minion/converge/alice-blog",
    state: "raised",
    severity: "critical",
    source: "minion",
    serviceId: "alice-blog",
    code: "CONVERGE_DEADLINE",
    message: "alice-blog did not converge within 5 minutes",
    at: NOW,
  }),
  routes: () => ({
    schemaVersion: 1,
    generatedAt: NOW,
    routes: [{ host: "alice.example", serviceId: "alice-blog", upstream: { kind: "unit", unit: "alice-blog" } }],
  }),
  units: () => ({
    schemaVersion: 1,
    generatedAt: NOW,
    units: [
      {
        id: "alice-blog",
        serviceId: "alice-blog",
        runtime: "docker",
        image: "coyote/busybox",
        port: 3001,
        memoryMb: 64,
        idleTimeoutSeconds: 60,
        dumpTimeoutSeconds: 5,
        readiness: { kind: "http", path: "/" },
        readinessTimeoutSeconds: 10,
      },
    ],
  }),
  inbox: () => ({
    schemaVersion: 1,
    id: "req-abcdefgh",
    receivedAt: NOW,
    from: { address: "https://buddy.example.net", fingerprint: FP_B },
    request: "become-backup",
    serviceId: "alice-blog",
  }),
  inboxDecision: () => ({ schemaVersion: 1, id: "req-abcdefgh", state: "accepted", decidedAt: NOW, decidedBy: "ada@example.org" }),
};

/** A bad case: a change to a good document and the field the error must name. */
interface BadCase {
  readonly name: string;
  readonly change: (doc: Record<string, any>) => void;
  readonly field: string;
  readonly says?: RegExp;
}

const BAD: Record<ContractName, BadCase[]> = {
  server: [
    { name: "wrong schemaVersion", change: (d) => (d.schemaVersion = 2), field: "schemaVersion", says: /must be 1/ },
    { name: "bad hostname", change: (d) => (d.hostname = "Box_One"), field: "hostname", says: /not a valid domain name/ },
    { name: "bad buddy fingerprint", change: (d) => (d.buddies[0].fingerprint = "abc"), field: "buddies[0].fingerprint", says: /fingerprint/ },
    { name: "duplicate buddy", change: (d) => d.buddies.push({ ...d.buddies[0], name: "again" }), field: "buddies[1].fingerprint" },
    { name: "signups before activation", change: (d) => (d.activated = false), field: "signupsOpen", says: /activated/ },
    { name: "bad alarm e-mail", change: (d) => (d.alarms.email[0] = "not-mail"), field: "alarms.email[0]", says: /e-mail/ },
    { name: "webhook not http", change: (d) => (d.alarms.webhooks[0] = "ftp://x.example"), field: "alarms.webhooks[0]", says: /http/ },
    { name: "unknown field", change: (d) => (d.colour = "red"), field: "colour", says: /unknown field/ },
    { name: "bad port", change: (d) => (d.ports = { http: 70000 }), field: "ports.http", says: /at most 65535/ },
    { name: "xmpp http port out of range", change: (d) => (d.xmpp = { httpPort: 0 }), field: "xmpp.httpPort", says: /at least 1/ },
    { name: "unknown certificate mode", change: (d) => (d.certificates = { mode: "magic" }), field: "certificates.mode" },
  ],
  service: [
    { name: "bad id", change: (d) => (d.id = "Alice Blog"), field: "id", says: /service id/ },
    { name: "reserved id", change: (d) => (d.id = "server"), field: "id", says: /reserved for the server spec/ },
    { name: "no domains", change: (d) => (d.domains = []), field: "domains", says: /at least one domain/ },
    { name: "bad domain", change: (d) => (d.domains[0].name = "alice..example"), field: "domains[0].name", says: /domain name/ },
    { name: "bad A address", change: (d) => (d.domains[0].records[0].address = "300.1.1.1"), field: "domains[0].records[0].address", says: /IPv4/ },
    { name: "unknown record type", change: (d) => (d.domains[0].records[0].type = "XX"), field: "domains[0].records[0].type", says: /record type/ },
    { name: "ttl too low", change: (d) => (d.domains[0].records[0].ttl = 1), field: "domains[0].records[0].ttl", says: /at least 30/ },
    { name: "mailbox off-domain", change: (d) => (d.mail.mailboxes[0].address = "alice@other.example"), field: "mail.mailboxes[0].address", says: /not on one of this service's domains/ },
    { name: "clear-text password", change: (d) => (d.mail.mailboxes[0].passwordHash = "hunter2"), field: "mail.mailboxes[0].passwordHash", says: /clear-text/ },
    { name: "hash with a newline adds a passwd-file line", change: (d) => (d.mail.mailboxes[0].passwordHash = "{SHA512-CRYPT}$6$x\nevil@alice.example:{PLAIN}x"), field: "mail.mailboxes[0].passwordHash", says: /without colons/ },
    { name: "hash with a colon adds a passwd-file field", change: (d) => (d.mail.mailboxes[0].passwordHash = "{SHA512-CRYPT}$6$x::0:0::/"), field: "mail.mailboxes[0].passwordHash", says: /without colons/ },
    { name: "hash with a NUL", change: (d) => (d.xmpp.users[0].passwordHash = "$scrypt$x\u0000y"), field: "xmpp.users[0].passwordHash", says: /printable ASCII/ },
    { name: "env value with a NUL", change: (d) => (d.web.backend.env = { TOKEN: "a\u0000b" }), field: "web.backend.env.TOKEN", says: /NUL/ },
    { name: "static root escapes with ..", change: (d) => (d.web.backend = { kind: "static", root: "public/../../secrets" }), field: "web.backend.root", says: /site folder/ },
    { name: "static root absolute", change: (d) => (d.web.backend = { kind: "static", root: "/" }), field: "web.backend.root", says: /no leading/ },
    { name: "static root with a backslash", change: (d) => (d.web.backend = { kind: "static", root: "..\\secrets" }), field: "web.backend.root" },
    { name: "static root with a NUL", change: (d) => (d.web.backend = { kind: "static", root: "public\u0000" }), field: "web.backend.root" },
    { name: "alias clashes with mailbox", change: (d) => (d.mail.aliases[0].address = "alice@alice.example"), field: "mail.aliases[0].address", says: /already/ },
    { name: "xmpp user on foreign domain", change: (d) => (d.xmpp.users[0].domain = "other.example"), field: "xmpp.users[0].domain" },
    { name: "xmpp group chat not a boolean", change: (d) => (d.xmpp.groupChat = "yes"), field: "xmpp.groupChat", says: /boolean/ },
    { name: "xmpp file sharing not a boolean", change: (d) => (d.xmpp.fileSharing = "yes"), field: "xmpp.fileSharing", says: /boolean/ },
    { name: "xmpp file size limit of 0 MB", change: (d) => (d.xmpp.fileSizeLimitMb = 0), field: "xmpp.fileSizeLimitMb", says: /fileSizeLimitMb is at least 1/ },
    { name: "xmpp file size limit over 100 MB", change: (d) => (d.xmpp.fileSizeLimitMb = 101), field: "xmpp.fileSizeLimitMb", says: /fileSizeLimitMb is at most 100/ },
    { name: "xmpp file size limit not whole", change: (d) => (d.xmpp.fileSizeLimitMb = 2.5), field: "xmpp.fileSizeLimitMb", says: /whole number of MB/ },
    { name: "xmpp file size limit a string", change: (d) => (d.xmpp.fileSizeLimitMb = "10"), field: "xmpp.fileSizeLimitMb", says: /whole number of MB/ },
    { name: "web hostname not ours", change: (d) => (d.web.hostnames[1] = "evil.example"), field: "web.hostnames[1]", says: /not one of this service's domains/ },
    { name: "web port out of range", change: (d) => (d.web.backend.port = 0), field: "web.backend.port", says: /at least 1/ },
    { name: "unknown backend kind", change: (d) => (d.web.backend = { kind: "ftp" }), field: "web.backend.kind", says: /backend kind/ },
    { name: "failover equals authority", change: (d) => (d.replication.failover = FP_A), field: "replication.failover", says: /authority/ },
    { name: "backup equals failover", change: (d) => (d.replication.backups = [FP_B]), field: "replication.backups[0]" },
    { name: "duplicate domain", change: (d) => d.domains.push({ name: "alice.example" }), field: "domains[1].name", says: /twice/ },
  ],
  status: [
    { name: "bad condition status", change: (d) => (d.conditions[0].status = "yes"), field: "conditions[0].status", says: /True/ },
    { name: "reason not PascalCase", change: (d) => (d.conditions[0].reason = "all good"), field: "conditions[0].reason", says: /PascalCase/ },
    { name: "bad time", change: (d) => (d.conditions[0].lastTransitionTime = "yesterday"), field: "conditions[0].lastTransitionTime", says: /ISO 8601/ },
    { name: "negative generation", change: (d) => (d.observedGeneration = -1), field: "observedGeneration" },
    { name: "duplicate condition", change: (d) => d.conditions.push({ ...d.conditions[0] }), field: "conditions[1].type", says: /twice/ },
  ],
  stats: [
    { name: "bad component", change: (d) => (d.component = "Snitch Proxy"), field: "component" },
    { name: "negative counter", change: (d) => (d.hosts["alice.example"].requests = -1), field: "hosts.alice.example.requests" },
    { name: "missing process", change: (d) => delete d.process, field: "process" },
  ],
  alarm: [
    { name: "bad state", change: (d) => (d.state = "open"), field: "state" },
    { name: "bad code", change: (d) => (d.code = "oops"), field: "code", says: /UPPER_SNAKE_CASE/ },
    { name: "empty message", change: (d) => (d.message = ""), field: "message" },
  ],
  routes: [
    { name: "bad host", change: (d) => (d.routes[0].host = "-x.example"), field: "routes[0].host" },
    { name: "bad path prefix", change: (d) => (d.routes[0].pathPrefix = "api"), field: "routes[0].pathPrefix", says: /starts with \// },
    { name: "bad upstream address", change: (d) => (d.routes[0].upstream = { kind: "address", address: "localhost" }), field: "routes[0].upstream.address", says: /host:port/ },
    { name: "duplicate route", change: (d) => d.routes.push({ ...d.routes[0] }), field: "routes[1]", says: /twice/ },
    { name: "relative static root", change: (d) => (d.routes[0].upstream = { kind: "static", root: "srv/site" }), field: "routes[0].upstream.root", says: /absolute/ },
    { name: "static root with ..", change: (d) => (d.routes[0].upstream = { kind: "static", root: "/srv/site/../../" }), field: "routes[0].upstream.root", says: /normalised/ },
  ],
  units: [
    { name: "docker unit without image", change: (d) => delete d.units[0].image, field: "units[0].image", says: /needs an image/ },
    { name: "memory too small", change: (d) => (d.units[0].memoryMb = 1), field: "units[0].memoryMb" },
    { name: "bad readiness", change: (d) => (d.units[0].readiness = { kind: "ping" }), field: "units[0].readiness.kind" },
    { name: "port clash", change: (d) => d.units.push({ ...d.units[0], id: "bob" }), field: "units[1].port", says: /already used/ },
  ],
  inbox: [
    { name: "unknown request", change: (d) => (d.request = "delete-everything"), field: "request" },
    { name: "missing service", change: (d) => delete d.serviceId, field: "serviceId", says: /names the service/ },
    { name: "decided without time", change: (d) => (d.state = "accepted"), field: "decidedAt" },
    { name: "bad fingerprint", change: (d) => (d.from.fingerprint = "sha256:xyz"), field: "from.fingerprint" },
  ],
  inboxDecision: [
    { name: "a pending decision", change: (d) => (d.state = "pending"), field: "state" },
    { name: "no one deciding", change: (d) => (d.decidedBy = ""), field: "decidedBy" },
    { name: "a path as id", change: (d) => (d.id = "../specs/x"), field: "id" },
  ],
};

describe("every contract", () => {
  for (const name of Object.keys(CONTRACTS) as ContractName[]) {
    describe(name, () => {
      const { schema } = CONTRACTS[name];
      test("accepts the good document", () => {
        validate(schema, GOOD[name](), `${name}.json`);
      });
      test("refuses a document that is not an object", () => {
        assert.throws(() => validate(schema, "nope", `${name}.json`), ContractError);
      });
      for (const bad of BAD[name]) {
        test(`refuses ${bad.name}, naming ${bad.field}`, () => {
          const doc = GOOD[name]();
          bad.change(doc);
          const error = (() => {
            try {
              validate(schema, doc, `somewhere/${name}.json`);
            } catch (e) {
              return e;
            }
            return undefined;
          })();
          assert.ok(error instanceof ContractError, "expected a ContractError");
          assert.equal(error.code, "SPEC_ERR_INVALID");
          assert.ok(error.message.startsWith(`somewhere/${name}.json: `), error.message);
          const issue = error.issues.find((i) => i.field === bad.field);
          assert.ok(issue, `no issue names ${bad.field}: ${error.message}`);
          if (bad.says) assert.match(issue.message, bad.says);
        });
      }
    });
  }
});

describe("parsing", () => {
  test("an empty file is a parse error naming the file", () => {
    assert.throws(() => parseJson(CONTRACTS.server.schema, "", "specs/server.json"), (e: unknown) => {
      assert.ok(e instanceof ContractError);
      assert.equal(e.code, "SPEC_ERR_PARSE");
      assert.match(e.message, /^specs\/server\.json: \(root\): the file is empty$/);
      return true;
    });
  });

  test("torn JSON is a parse error", () => {
    assert.throws(() => parseJson(CONTRACTS.server.schema, '{"schemaVersion": 1, "kind": "Ser', "x.json"), /x\.json: \(root\): not valid JSON/);
  });

  test("parseSpec picks the schema by kind and refuses an unknown kind", () => {
    assert.equal(parseSpec(GOOD.server(), "a.json").kind, "Server");
    assert.equal(parseSpec(GOOD.service(), "b.json").kind, "Service");
    assert.throws(() => parseSpec({ kind: "Toaster" }, "c.json"), /c\.json: kind: must be "Server" or "Service", not "Toaster"/);
    assert.throws(() => parseSpec([], "d.json"), /d\.json: kind: .*missing/);
  });

  test("defaults are filled in", () => {
    const server = parseSpec({ schemaVersion: 1, kind: "Server", name: "b", hostname: "b.example.org" }, "s.json");
    assert.equal(server.kind, "Server");
    assert.deepEqual(server.certificates, { mode: "local-ca" });
    assert.equal(server.dns.backend, "builtin");
    assert.equal(server.heartbeat.missedBeforeDown, 5);
    assert.deepEqual(server.mail, { smtpListen: "127.0.0.1:2525", submissionListen: "127.0.0.1:2587", submissionsListen: "127.0.0.1:2465", imapListen: "127.0.0.1:2143", imapsListen: "127.0.0.1:2993" }, "mail clients' listeners on loopback ports by default");
    assert.equal(server.xmpp.httpPort, 5280, "prosody's HTTP server (file sharing) on loopback port 5280 by default");
  });

  test("xmpp file sharing is off unless asked for, and takes a size limit in MB", () => {
    const doc = GOOD.service();
    const plain = parseSpec(doc, "a.json");
    assert.ok(plain.kind === "Service" && plain.xmpp !== undefined && plain.xmpp.fileSharing === undefined && plain.xmpp.fileSizeLimitMb === undefined);
    doc.xmpp = { ...(doc.xmpp as object), fileSharing: true, fileSizeLimitMb: 100 };
    const sharing = parseSpec(doc, "b.json");
    assert.ok(sharing.kind === "Service" && sharing.xmpp?.fileSharing === true && sharing.xmpp.fileSizeLimitMb === 100);
  });

  test("the mail client listeners are host:port addresses, named when wrong", () => {
    const base = { schemaVersion: 1, kind: "Server", name: "b", hostname: "b.example.org" };
    const server = parseSpec({ ...base, mail: { imapsListen: "0.0.0.0:993", submissionListen: "[::]:587" } }, "s.json");
    assert.equal(server.kind, "Server");
    assert.deepEqual(server.mail, { smtpListen: "127.0.0.1:2525", imapsListen: "0.0.0.0:993", submissionListen: "[::]:587", submissionsListen: "127.0.0.1:2465", imapListen: "127.0.0.1:2143" });
    assert.throws(() => parseSpec({ ...base, mail: { imapListen: "0.0.0.0:99999" } }, "s.json"), /s\.json: mail\.imapListen: not a host:port address: "0\.0\.0\.0:99999"/);
    assert.throws(() => parseSpec({ ...base, mail: { submissionsListen: "465" } }, "s.json"), /mail\.submissionsListen: not a host:port address/);
    assert.throws(() => parseSpec({ ...base, mail: { popListen: "0.0.0.0:110" } }, "s.json"), /s\.json: mail\.popListen: unknown field/);
  });

  test("every issue of a document is reported, not only the first", () => {
    const doc = GOOD.service();
    doc.id = "Bad Id";
    (doc.domains as { name: string }[])[0] = { name: "x" };
    try {
      parseSpec(doc, "multi.json");
      assert.fail("expected an error");
    } catch (e) {
      assert.ok(e instanceof ContractError);
      const fields = e.issues.map((i) => i.field);
      assert.ok(fields.includes("id") && fields.includes("domains[0].name"), fields.join(", "));
    }
  });
});
