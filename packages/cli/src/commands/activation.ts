// `coyote activation`: where the admin activates the box (the panel on the box's own hostname,
// through snitch-proxy over HTTPS), the one-time token while the box is not activated, and, when
// the browser meets a certificate of the box's own CA, that CA's fingerprint to compare with what
// the browser shows.
import { randomBytes, X509Certificate } from "node:crypto";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { ACTIVATION_SECRET, LOCAL_CA_FILES, firstCertificate, LOCAL_CA_FILE_MAX_BYTES, ServerSpec, StateStore, certificateFileName, proxyRuntimePaths, serverOrDefaults, specPath } from "@coyote/spec";
import type { CliEnv } from "../env.ts";
import type { Io } from "../io.ts";

/** What `coyote activation --json` prints. */
export interface ActivationInfo {
  /** The panel on the box's hostname: `https://<hostname>/`, with `:<port>` when `ports.https` is not 443. */
  readonly url: string;
  /** The one-time activation token; null once the box is activated. */
  readonly token: string | null;
  /**
   * The SHA-256 fingerprint of the box's own CA (upper-case hex pairs joined by colons, as
   * browsers show it) when the certificate the browser meets on the hostname is, or will be, of
   * that CA; null otherwise, or while the CA is not made yet.
   */
  readonly caFingerprint: string | null;
  /** The server spec's certificate mode. */
  readonly certificateMode: ServerSpec["certificates"]["mode"];
}

/** What the lines say besides {@link ActivationInfo}: where the CA certificate and the token are kept. */
interface ActivationDetails extends ActivationInfo {
  readonly caFile: string;
  readonly tokenFile: string;
  /** Why the CA certificate could not be read, when it is on disk but unusable. */
  readonly caProblem: string | undefined;
  /** With ACME: whether the hostname's certificate is the local CA's stand-in until the order succeeds. */
  readonly standIn: boolean;
}

// Crockford's base32 alphabet: no I, L, O or U, so a token read aloud or copied by hand survives.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** Makes a one-time activation token: 20 base32 characters (100 bits) in groups of four. */
export function newActivationToken(): string {
  const bytes = randomBytes(20);
  let token = "";
  for (const byte of bytes) token += ALPHABET.charAt(byte % 32);
  return token.match(/.{4}/g)?.join("-") ?? token;
}

/**
 * Returns the activation token of a box that is not activated yet, making it on the first call;
 * undefined once the server spec says the box is activated (the token is then of no use).
 */
export async function activationToken(store: StateStore): Promise<string | undefined> {
  const server = await store.readJson(specPath("server"), ServerSpec);
  if (server?.activated) return undefined;
  const existing = await store.readSecret(ACTIVATION_SECRET);
  if (existing !== undefined) return existing.toString("utf8").trim();
  const token = newActivationToken();
  await store.writeSecret(ACTIVATION_SECRET, `${token}\n`);
  return token;
}

/** The panel's URL on the box's hostname: the port is left out when it is HTTPS's own. */
export function activationUrl(server: Pick<ServerSpec, "hostname" | "ports">): string {
  return `https://${server.hostname}${server.ports.https === 443 ? "" : `:${String(server.ports.https)}`}/`;
}

/**
 * A small file of the state folder as text: undefined when it does not exist; an Error (not
 * thrown) when it cannot be read or is larger than `maxBytes`.
 */
async function readSmallFile(file: string, maxBytes: number): Promise<string | undefined | Error> {
  let handle;
  try {
    handle = await open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return new Error(`cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) return new Error("not a regular file");
    if (info.size > maxBytes) return new Error(`${String(info.size)} bytes, more than the ${String(maxBytes)} a certificate may be`);
    const buffer = Buffer.alloc(info.size);
    const { bytesRead } = await handle.read(buffer, 0, info.size, 0);
    return buffer.subarray(0, bytesRead).toString("utf8");
  } finally {
    await handle.close();
  }
}

/** The box's CA certificate, undefined while there is none, or why it is unusable. */
async function readCa(file: string): Promise<X509Certificate | undefined | Error> {
  const text = await readSmallFile(file, LOCAL_CA_FILE_MAX_BYTES);
  if (text === undefined || text instanceof Error) return text;
  const ca = firstCertificate(text);
  if (ca === undefined) return new Error("no certificate in it");
  if (!ca.ca) return new Error("its certificate is not a CA's");
  return ca;
}

/** Whether the certificate kept for the box's hostname (`proxy/certs/<hostname>.pem`) was issued by `ca`. */
async function issuedBy(certsDir: string, hostname: string, ca: X509Certificate): Promise<boolean> {
  const text = await readSmallFile(join(certsDir, certificateFileName(hostname)), LOCAL_CA_FILE_MAX_BYTES);
  if (text === undefined || text instanceof Error) return false;
  const leaf = firstCertificate(text);
  return leaf !== undefined && leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

async function gather(store: StateStore): Promise<ActivationDetails> {
  const server = serverOrDefaults(await store.readJson(specPath("server"), ServerSpec));
  const token = (await activationToken(store)) ?? null;
  const paths = proxyRuntimePaths(store.root);
  const caFile = join(paths.ca, LOCAL_CA_FILES.certificate.file);
  const ca = await readCa(caFile);
  const mode = server.certificates.mode;
  // With ACME the hostname carries a certificate of the local CA until the first order succeeds.
  const standIn = mode === "acme" && ca instanceof X509Certificate && (await issuedBy(paths.certs, server.hostname, ca));
  const fingerprint = ca instanceof X509Certificate && (mode === "local-ca" || standIn) ? ca.fingerprint256 : null;
  return {
    url: activationUrl(server),
    token,
    caFingerprint: fingerprint,
    certificateMode: mode,
    caFile,
    tokenFile: store.path(`secrets/${ACTIVATION_SECRET}`),
    caProblem: ca instanceof Error && mode === "local-ca" ? ca.message : undefined,
    standIn,
  };
}

/** The lines {@link activationLines} prints for what {@link gather} found. */
function linesOf(details: ActivationDetails): string[] {
  const lines: string[] = [];
  if (details.token !== null) {
    lines.push(`activation: open ${details.url} and enter the token below`);
    lines.push(`activation token: ${details.token} (one-time; kept in ${details.tokenFile} until the box is activated)`);
  } else {
    lines.push(`panel: ${details.url}`);
    lines.push("activation: done; log in to the panel as the admin");
  }
  if (details.caFingerprint !== null) {
    const until = details.standIn ? " until the ACME order succeeds" : "";
    lines.push(`certificate: from the box's own CA${until} (${details.caFile}); browsers show its SHA-256 fingerprint as ${details.caFingerprint}`);
  } else if (details.certificateMode === "local-ca") {
    const why = details.caProblem === undefined ? "not made yet; the minion makes it when it starts" : `unusable: ${details.caProblem}`;
    lines.push(`certificate: from the box's own CA, whose certificate ${details.caFile} is ${why}`);
  } else {
    lines.push("certificate: from the ACME CA the server spec names, which browsers already trust");
  }
  return lines;
}

/**
 * The activation lines `coyote activation` prints (and `coyote up` may print): the panel's URL on
 * the box's hostname, the one-time token while the box is not activated (made on first use, as
 * `coyote up` makes it), and the fingerprint of the box's own CA when the browser meets one of its
 * certificates.
 * @param env the CLI's environment (its state folder).
 * @param store the state store when the caller has it open already.
 */
export async function activationLines(env: Pick<CliEnv, "stateDir">, store?: StateStore): Promise<string[]> {
  return linesOf(await gather(store ?? (await StateStore.open(env.stateDir))));
}

/**
 * What `coyote activation --json` prints, for the state folder of `store`.
 * @param store the state store.
 */
export async function activationInfo(store: StateStore): Promise<ActivationInfo> {
  const { url, token, caFingerprint, certificateMode } = await gather(store);
  return { url, token, caFingerprint, certificateMode };
}

/** Adds `coyote activation`. */
export function activationCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("activation")
    .description("show where to activate the box (the panel on its hostname over HTTPS), the one-time token, and the fingerprint of the box's own CA")
    .option("--json", "print one JSON object: url, token, caFingerprint, certificateMode")
    .action(async (options: { json?: boolean }) => {
      const store = await StateStore.open(env.stateDir);
      if (options.json) {
        io.out(JSON.stringify(await activationInfo(store)));
        return;
      }
      for (const line of await activationLines(env, store)) io.out(line);
    });
}
