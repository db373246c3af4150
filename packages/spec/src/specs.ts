import { z } from "zod";
import {
  DomainName,
  Email,
  Environment,
  Fingerprint,
  HostPort,
  HttpUrl,
  PasswordHash,
  Port,
  RelativeName,
  SchemaVersion,
  SecretRef,
  ServiceId,
  SiteRelativePath,
  WebHostname,
} from "./primitives.ts";
import { DomainVouch, ProofToken } from "./domain-proof.ts";

const Ttl = z.int().min(30, { error: "a ttl is at least 30 seconds" }).max(604800, { error: "a ttl is at most 604800 seconds (a week)" });
const base = { name: RelativeName.default("@"), ttl: Ttl.optional() };

/** One DNS record inside a domain's zone; the owner name is relative to the zone. */
export const DnsRecord = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ ...base, type: z.literal("A"), address: z.ipv4({ error: "not an IPv4 address" }) }),
    z.strictObject({ ...base, type: z.literal("AAAA"), address: z.ipv6({ error: "not an IPv6 address" }) }),
    z.strictObject({ ...base, type: z.literal("CNAME"), target: DomainName }),
    z.strictObject({ ...base, type: z.literal("NS"), target: DomainName }),
    z.strictObject({ ...base, type: z.literal("MX"), priority: z.int().min(0).max(65535), exchange: DomainName }),
    z.strictObject({
      ...base,
      type: z.literal("TXT"),
      text: z.string().min(1).max(4000, { error: "a TXT record holds at most 4000 characters" }),
    }),
    z.strictObject({
      ...base,
      type: z.literal("CAA"),
      flags: z.int().min(0).max(255).default(0),
      tag: z.enum(["issue", "issuewild", "iodef"]),
      value: z.string().min(1).max(255),
    }),
    z.strictObject({
      ...base,
      type: z.literal("SRV"),
      priority: z.int().min(0).max(65535),
      weight: z.int().min(0).max(65535),
      port: Port,
      target: DomainName,
    }),
  ],
  { error: (issue) => `unknown or missing DNS record type ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type)} (A, AAAA, CNAME, NS, MX, TXT, CAA or SRV)` },
);
/** One DNS record. */
export type DnsRecord = z.infer<typeof DnsRecord>;

/**
 * A domain a service uses. With `authoritative`, this box serves the whole zone (SOA, NS and the
 * records the service needs are generated; `records` adds to them); without, it is a name under
 * someone else's zone (e.g. a subdomain of the box's own domain).
 */
export const DomainSpec = z.strictObject({
  name: DomainName,
  authoritative: z.boolean().default(true),
  records: z.array(DnsRecord).max(1000).default([]),
  /**
   * The ownership claim of a customer's own domain: the token its `_coyote-challenge` TXT record
   * must hold before the box serves it (domain-proof.ts). Public, not a secret.
   */
  challenge: ProofToken.optional(),
  /** An admin's word that the domain is the owner's, which stands in for the proof. */
  vouched: DomainVouch.optional(),
});

/**
 * The password of a mailbox or XMPP account: `credential` names the secret in `secrets/` that
 * holds its hash (credentials.ts). A writer may hand the store an inline `passwordHash` instead;
 * the store moves it to `secrets/` before the spec is written, so a stored spec (a git history,
 * shown in diffs) never holds one.
 */
const accountCredential = { passwordHash: PasswordHash.optional(), credential: SecretRef.optional() };

function oneCredential(value: { passwordHash?: string | undefined; credential?: string | undefined }, ctx: z.RefinementCtx): void {
  if ((value.passwordHash === undefined) === (value.credential === undefined)) {
    ctx.addIssue({ code: "custom", path: ["credential"], message: "an account has exactly one of credential (a secret name) and passwordHash" });
  }
}

/** A mailbox: an address on one of the service's domains and its credential. */
export const Mailbox = z
  .strictObject({
    address: Email,
    ...accountCredential,
    quotaMb: z.int().min(1).max(1048576).optional(),
  })
  .superRefine(oneCredential);

/** Mail for a service's domains (Postfix virtual domains, Dovecot users, DKIM). */
export const MailSpec = z.strictObject({
  mailboxes: z.array(Mailbox).max(10000).default([]),
  aliases: z.array(z.strictObject({ address: Email, to: z.array(Email).min(1, { error: "an alias forwards to at least one address" }) })).default([]),
  catchAll: Email.optional(),
});

/**
 * The label of a domain's file sharing host, `upload.<domain>`: Prosody's upload service and the
 * hostname its files are reached at over HTTPS (routed by snickers, published by dnsconf).
 */
export const FILE_SHARING_LABEL = "upload";

/** XMPP for a service's domains (a Prosody VirtualHost each, user accounts, SRV records). */
export const XmppSpec = z.strictObject({
  users: z
    .array(
      z
        .strictObject({
          username: z.string().regex(/^[a-z0-9._-]{1,64}$/, { error: (issue) => `not an XMPP username: ${JSON.stringify(issue.input)} (1-64 of a-z, 0-9, dot, underscore, hyphen)` }),
          domain: DomainName,
          ...accountCredential,
        })
        .superRefine(oneCredential),
    )
    .max(10000)
    .default([]),
  /**
   * Group chats: a multi-user chat service `conference.<domain>` for each of the service's
   * domains, where only the domain's own users create rooms. Off unless asked for.
   */
  groupChat: z.boolean().optional(),
  /**
   * File sharing (XEP-0363 HTTP file upload): an upload service `upload.<domain>` for each of the
   * service's domains, for the domain's own users, reached over HTTPS through the box's proxy.
   * Off unless asked for.
   */
  fileSharing: z.boolean().optional(),
  /** The largest file one upload may hold, in MB (default 10). */
  fileSizeLimitMb: z
    .int({ error: (issue) => `fileSizeLimitMb is a whole number of MB, not ${JSON.stringify(issue.input)}` })
    .min(1, { error: "fileSizeLimitMb is at least 1" })
    .max(100, { error: "fileSizeLimitMb is at most 100" })
    .optional(),
});

/** A readiness probe: how the activator knows a woken backend can take requests. */
export const Readiness = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("tcp") }),
  z.strictObject({
    kind: z.literal("http"),
    path: z.string().startsWith("/", { error: "a readiness path starts with /" }).default("/"),
    expectStatus: z.int().min(100).max(599).optional(),
  }),
]);

/** How a sleeping backend is asked to save its state before it is stopped. */
export const DumpState = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("exec"), command: z.array(z.string().min(1)).min(1) }),
  z.strictObject({ kind: z.literal("signal"), signal: z.enum(["SIGUSR1", "SIGUSR2", "SIGHUP", "SIGTERM"]) }),
]);

const sleeping = {
  port: Port,
  /**
   * Environment variables. Their values may be secrets (API keys, database passwords): the store
   * moves them into the secret `envSecret` names before the spec is written (env-secrets.ts), so
   * a stored spec holds none.
   */
  env: Environment.default({}),
  envSecret: SecretRef.optional(),
  memoryMb: z.int().min(16, { error: "memoryMb is at least 16" }).max(1048576).default(256),
  idleTimeoutSeconds: z.int().min(0).max(604800).default(900),
  dumpState: DumpState.optional(),
  dumpTimeoutSeconds: z.int().min(1).max(3600).default(30),
  readiness: Readiness.default({ kind: "tcp" }),
  readinessTimeoutSeconds: z.int().min(1).max(600).default(30),
};

/** What answers a service's web traffic. */
export const WebBackend = z.discriminatedUnion(
  "kind",
  [
    /** Files served from `root`, a folder inside the service's own site folder `sites/<id>/`. */
    z.strictObject({ kind: z.literal("static"), root: SiteRelativePath.default(".") }),
    z.strictObject({ kind: z.literal("container"), image: z.string().min(1), command: z.array(z.string()).optional(), ...sleeping }),
    z.strictObject({ kind: z.literal("process"), command: z.array(z.string().min(1)).min(1), cwd: z.string().optional(), ...sleeping }),
    z.strictObject({ kind: z.literal("upstream"), address: HostPort }),
  ],
  { error: "unknown web backend kind (static, container, process or upstream)" },
);

/** Web hosting for a service: the hostnames it answers on and its backend. */
export const WebSpec = z.strictObject({
  hostnames: z.array(WebHostname).min(1).max(100),
  backend: WebBackend,
  /**
   * Answers carry Strict-Transport-Security for a year: browsers then reach these hostnames over
   * HTTPS only. Off unless the service opts in, since it cannot be taken back for that year.
   */
  hsts: z.boolean().optional(),
});

/**
 * Who holds a service: one authority, at most one failover, any number of backups, by
 * server fingerprint. The failover takes over only after `failoverWindowSeconds` of the service and
 * its zone both being unreachable; a backup only alarms.
 */
export const Replication = z
  .strictObject({
    authority: Fingerprint,
    failover: Fingerprint.optional(),
    backups: z.array(Fingerprint).default([]),
    dumpIntervalSeconds: z.int().min(60).max(86400).default(3600),
    failoverWindowSeconds: z.int().min(60).max(86400).default(300),
  })
  .superRefine((value, ctx) => {
    if (value.failover === value.authority) ctx.addIssue({ code: "custom", path: ["failover"], message: "the failover cannot be the authority itself" });
    value.backups.forEach((backup, i) => {
      if (backup === value.authority) ctx.addIssue({ code: "custom", path: ["backups", i], message: "a backup cannot be the authority itself" });
      if (backup === value.failover) ctx.addIssue({ code: "custom", path: ["backups", i], message: "the failover is already a backup; list it once, as failover" });
    });
  });

/** A service's contract: its documentation and the upstream calls it is allowed to make. */
export const Contract = z.strictObject({
  docsUrl: HttpUrl,
  allowedUpstreams: z.array(HostPort).default([]),
});

/** The desired state of one hosted service: `specs/services/<id>.json`. */
export const ServiceSpec = z
  .strictObject({
    schemaVersion: SchemaVersion,
    kind: z.literal("Service"),
    id: ServiceId,
    generation: z.int().min(1).optional(),
    description: z.string().max(500).optional(),
    owner: z.strictObject({ customerId: z.string().min(1).max(128), email: Email }).optional(),
    plan: z.string().min(1).max(64).optional(),
    domains: z.array(DomainSpec).min(1, { error: "a service has at least one domain" }).max(100),
    mail: MailSpec.optional(),
    xmpp: XmppSpec.optional(),
    web: WebSpec.optional(),
    replication: Replication.optional(),
    contract: Contract.optional(),
  })
  .superRefine((spec, ctx) => {
    const names = spec.domains.map((d) => d.name);
    const ownDomain = (host: string) => names.some((name) => host === name || host.endsWith(`.${name}`));
    names.forEach((name, i) => {
      if (names.indexOf(name) !== i) ctx.addIssue({ code: "custom", path: ["domains", i, "name"], message: `domain ${name} is listed twice` });
    });
    const checkAddress = (address: string, path: (string | number)[]) => {
      const domain = address.slice(address.lastIndexOf("@") + 1);
      if (!names.includes(domain)) ctx.addIssue({ code: "custom", path, message: `${address} is not on one of this service's domains (${names.join(", ")})` });
    };
    const seen = new Set<string>();
    spec.mail?.mailboxes.forEach((box, i) => {
      checkAddress(box.address, ["mail", "mailboxes", i, "address"]);
      if (seen.has(box.address)) ctx.addIssue({ code: "custom", path: ["mail", "mailboxes", i, "address"], message: `${box.address} is listed twice` });
      seen.add(box.address);
    });
    spec.mail?.aliases.forEach((alias, i) => {
      checkAddress(alias.address, ["mail", "aliases", i, "address"]);
      if (seen.has(alias.address)) ctx.addIssue({ code: "custom", path: ["mail", "aliases", i, "address"], message: `${alias.address} is already a mailbox or alias` });
      seen.add(alias.address);
    });
    spec.xmpp?.users.forEach((user, i) => {
      if (!names.includes(user.domain)) ctx.addIssue({ code: "custom", path: ["xmpp", "users", i, "domain"], message: `${user.domain} is not one of this service's domains` });
    });
    spec.web?.hostnames.forEach((host, i) => {
      if (!ownDomain(host)) ctx.addIssue({ code: "custom", path: ["web", "hostnames", i], message: `${host} is not one of this service's domains nor under one` });
    });
  });
/** The desired state of one hosted service. */
export type ServiceSpec = z.infer<typeof ServiceSpec>;

/** A buddy server: another Coyote box that watches this one and that this one watches. */
export const Buddy = z.strictObject({
  name: z.string().min(1).max(100),
  address: HttpUrl,
  fingerprint: Fingerprint,
});

/** The desired state of the box itself: `specs/server.json`. */
export const ServerSpec = z
  .strictObject({
    schemaVersion: SchemaVersion,
    kind: z.literal("Server"),
    generation: z.int().min(1).optional(),
    name: z.string().min(1).max(100),
    hostname: DomainName,
    publicIPv4: z.ipv4({ error: "not an IPv4 address" }).optional(),
    publicIPv6: z.ipv6({ error: "not an IPv6 address" }).optional(),
    /** The box's own domain, under which customers may take a subdomain. */
    customerDomain: DomainName.optional(),
    activated: z.boolean().default(false),
    signupsOpen: z.boolean().default(false),
    certificates: z
      .discriminatedUnion("mode", [
        z.strictObject({ mode: z.literal("local-ca") }),
        z.strictObject({
          mode: z.literal("acme"),
          directoryUrl: HttpUrl,
          email: Email,
          profile: z.enum(["classic", "tlsserver", "shortlived"]).optional(),
          caBundleFile: z.string().optional(),
        }),
      ])
      .default({ mode: "local-ca" }),
    dns: z
      .strictObject({
        backend: z.enum(["builtin", "knot"]).default("builtin"),
        listen: z.array(HostPort).min(1).default(["127.0.0.1:5353"]),
        /** The resolver that domain ownership checks ask (the system's resolver when unset). */
        resolver: HostPort.optional(),
      })
      .default({ backend: "builtin", listen: ["127.0.0.1:5353"] }),
    mail: z
      .strictObject({
        smtpListen: HostPort.default("127.0.0.1:2525"),
        /**
         * Where mail clients connect, each `host:port`: submission with STARTTLS (587 in
         * production), submission with implicit TLS (465), IMAP with STARTTLS (143), IMAP with
         * implicit TLS (993). The embedded default listens on loopback ports above 1024, as SMTP
         * does, so that `coyote up` serves mail clients without root's ports.
         */
        submissionListen: HostPort.default("127.0.0.1:2587"),
        submissionsListen: HostPort.default("127.0.0.1:2465"),
        imapListen: HostPort.default("127.0.0.1:2143"),
        imapsListen: HostPort.default("127.0.0.1:2993"),
      })
      .default({ smtpListen: "127.0.0.1:2525", submissionListen: "127.0.0.1:2587", submissionsListen: "127.0.0.1:2465", imapListen: "127.0.0.1:2143", imapsListen: "127.0.0.1:2993" }),
    xmpp: z
      .strictObject({
        interfaces: z.array(z.union([z.ipv4(), z.ipv6()], { error: "not an IP address" })).min(1).default(["127.0.0.1"]),
        clientPort: Port.default(5222),
        serverPort: Port.default(5269),
        /**
         * The loopback port of Prosody's HTTP server, which serves file sharing's uploads to the
         * box's proxy only (it never listens on another address).
         */
        httpPort: Port.default(5280),
      })
      .default({ interfaces: ["127.0.0.1"], clientPort: 5222, serverPort: 5269, httpPort: 5280 }),
    runtime: z.enum(["auto", "docker", "process"]).default("auto"),
    ports: z
      .strictObject({ http: Port.default(8080), https: Port.default(8443), panel: Port.default(3000) })
      .default({ http: 8080, https: 8443, panel: 3000 }),
    limits: z
      .strictObject({
        memoryBudgetMb: z.int().min(64).max(1048576).default(2048),
        maxConnections: z.int().min(1).max(1000000).default(10000),
      })
      .default({ memoryBudgetMb: 2048, maxConnections: 10000 }),
    buddies: z.array(Buddy).max(100).default([]),
    alarms: z
      .strictObject({
        email: z.array(Email).default([]),
        /** URLs given to the store; it moves them into the secret `webhooksSecret` names (webhook-secrets.ts). */
        webhooks: z.array(HttpUrl).max(100).default([]),
        webhooksSecret: SecretRef.optional(),
      })
      .default({ email: [], webhooks: [] }),
    providers: z
      .strictObject({ vultr: SecretRef.optional(), namecheap: SecretRef.optional() })
      .default({}),
    heartbeat: z
      .strictObject({ intervalSeconds: z.int().min(1).max(3600).default(30), missedBeforeDown: z.int().min(1).max(100).default(5) })
      .default({ intervalSeconds: 30, missedBeforeDown: 5 }),
  })
  .superRefine((spec, ctx) => {
    spec.buddies.forEach((buddy, i) => {
      if (spec.buddies.findIndex((b) => b.fingerprint === buddy.fingerprint) !== i) {
        ctx.addIssue({ code: "custom", path: ["buddies", i, "fingerprint"], message: `buddy ${buddy.name} has the same fingerprint as another buddy` });
      }
    });
    if (spec.signupsOpen && !spec.activated) ctx.addIssue({ code: "custom", path: ["signupsOpen"], message: "signups cannot open before the server is activated" });
  });
/** The desired state of the box itself. */
export type ServerSpec = z.infer<typeof ServerSpec>;

/** Any spec: the server's or a service's, told apart by `kind`. */
export type Spec = ServerSpec | ServiceSpec;
