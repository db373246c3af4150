import { z } from "zod";

/**
 * The version of every on-disk contract in this package. A reader refuses a file whose version it
 * does not know instead of guessing at its meaning.
 */
export const SCHEMA_VERSION = 1;

/** The `schemaVersion` field every contract starts with. */
export const SchemaVersion = z.literal(SCHEMA_VERSION, {
  error: `schemaVersion must be ${SCHEMA_VERSION}`,
});

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A fully qualified domain name in lowercase, without the trailing dot: at least two labels, each
 * 1-63 characters of a-z, 0-9 and inner hyphens, 253 characters at most.
 */
export const DomainName = z
  .string()
  .max(253, { error: "a domain name has at most 253 characters" })
  .refine((name) => {
    const labels = name.split(".");
    return labels.length >= 2 && labels.every((label) => LABEL.test(label)) && !/^[0-9]+$/.test(labels.at(-1) ?? "");
  }, { error: (issue) => `not a valid domain name: ${JSON.stringify(issue.input)} (lowercase labels of a-z, 0-9 and hyphens, like "example.org")` });

/**
 * A web hostname: a domain name, or a wildcard `*.example.org` that stands for every name one label
 * below it (its certificate comes over ACME DNS-01, or from the local CA).
 */
export const WebHostname = z.string().refine(
  (name) => DomainName.safeParse(name.startsWith("*.") ? name.slice(2) : name).success && (!name.startsWith("*.") || name.split(".").length >= 3),
  { error: (issue) => `not a valid web hostname: ${JSON.stringify(issue.input)} (a domain name like "shop.example.org", or a wildcard like "*.shop.example.org")` },
);

/** A DNS owner name relative to its zone: `@` for the apex, `*` or `*.x` for wildcards, or labels. */
export const RelativeName = z.string().refine(
  (name) => name === "@" || name.split(".").every((label, i) => (label === "*" && i === 0) || LABEL.test(label)),
  { error: (issue) => `not a valid name inside a zone: ${JSON.stringify(issue.input)} (use "@" for the zone itself)` },
);

/**
 * A service id: a DNS-label-like slug (lowercase a-z, 0-9, inner hyphens, 1-63 characters), so
 * that it is safe as a file name, a container name and a hostname label. `server` is reserved.
 */
export const ServiceId = z
  .string()
  .regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)$/, {
    error: (issue) => `not a valid service id: ${JSON.stringify(issue.input)} (1-63 of a-z, 0-9 and inner hyphens)`,
  })
  // "server" names the server spec (`coyote spec get server`), so no service may take it.
  .refine((id) => id !== "server", { error: '"server" is reserved for the server spec; choose another service id' });

/** A TCP or UDP port number. */
export const Port = z.int({ error: "a port is a whole number" }).min(1, { error: "a port is at least 1" }).max(65535, { error: "a port is at most 65535" });

/** A `host:port` address; the host is an IPv4 address, a bracketed IPv6 address or a hostname. */
export const HostPort = z.string().refine((value) => {
  const match = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+):([0-9]{1,5})$/.exec(value);
  if (!match) return false;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535;
}, { error: (issue) => `not a host:port address: ${JSON.stringify(issue.input)} (like "127.0.0.1:8080" or "[::1]:8080")` });

/** A key fingerprint that identifies a Coyote server: `sha256:` and 64 lowercase hex digits. */
export const Fingerprint = z.string().regex(/^sha256:[0-9a-f]{64}$/, {
  error: (issue) => `not a server fingerprint: ${JSON.stringify(issue.input)} (sha256: followed by 64 lowercase hex digits)`,
});

/** An instant as an ISO 8601 string in UTC with a `Z`. */
export const Timestamp = z.iso.datetime({ error: (issue) => `not an ISO 8601 UTC time: ${JSON.stringify(issue.input)}` });

/** An e-mail address. */
export const Email = z.email({ error: (issue) => `not an e-mail address: ${JSON.stringify(issue.input)}` });

/** An http(s) URL. */
export const HttpUrl = z.url({ protocol: /^https?$/, error: (issue) => `not an http(s) URL: ${JSON.stringify(issue.input)}` });

/**
 * A stored password hash, never a password: a Dovecot-style scheme prefix (`{ARGON2ID}`,
 * `{SHA512-CRYPT}`, ...) or a PHC string (`$argon2id$...`, `$scrypt$...`). Specs live in a git
 * history, so a clear-text password must never reach one.
 */
export const PasswordHash = z.string().max(1024, { error: "a password hash has at most 1024 characters" }).regex(/^(\{[A-Z0-9.-]+\}|\$[a-z0-9-]+\$)[\x21-\x39\x3b-\x7e]+$/, {
  // Printable ASCII without colon or space: the hash becomes one field of Dovecot's passwd-file
  // (colon-separated, one line per user), and no scheme's output holds anything else.
  error: "not a password hash (printable ASCII without colons or spaces; a clear-text password must never be put in a spec; store a {SCHEME}hash or a $argon2id$/$scrypt$ PHC string)",
});

const SITE_SEGMENT = /^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$/;

/**
 * A folder inside a service's own site folder (`sites/<id>/` in the state folder): `.` for the
 * site folder itself, or a relative `/`-separated path of plain names (no `..`, no absolute path,
 * no backslash or control character), so that a static site can never publish anything outside it
 * (the state folder's `secrets/`, or `/`).
 */
export const SiteRelativePath = z
  .string()
  .max(1024, { error: "a site folder path has at most 1024 characters" })
  .refine((path) => path === "." || path.split("/").every((segment) => SITE_SEGMENT.test(segment)), {
    error: (issue) =>
      `not a folder inside the service's site folder: ${JSON.stringify(issue.input)} ("." or a relative path of names of a-z, A-Z, 0-9, dot, underscore, hyphen; no "..", no leading "/")`,
  });

/** A name of a file in `secrets/`: the spec refers to the secret, it never holds it. */
export const SecretRef = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, {
  error: (issue) => `not a secret name: ${JSON.stringify(issue.input)} (a file name in secrets/: a-z, 0-9, dot, underscore, hyphen)`,
});

/**
 * Environment variables for a backend: POSIX names to string values. A value cannot hold a NUL
 * (the C strings a process's environment is made of would end there, and Node refuses to spawn).
 */
export const Environment = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, { error: (issue) => `not an environment variable name: ${JSON.stringify(issue.input)}` }),
  z.string().max(32768, { error: "an environment value has at most 32768 characters" }).refine((value) => !value.includes("\0"), { error: "an environment value cannot hold a NUL character" }),
);
