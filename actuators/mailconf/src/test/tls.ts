// A self-signed certificate for the mail hostname, made with openssl, for this package's tests.
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/**
 * Makes a P-256 key and a self-signed certificate for `hostname` (valid two days) and writes them
 * as snickers does: key, then certificate, in one PEM file of mode 0600.
 * @returns the certificate alone (what a client trusts).
 */
export async function writeSelfSignedChain(pemFile: string, hostname: string, workDir: string): Promise<string> {
  const key = join(workDir, "tls-key.pem");
  const cert = join(workDir, "tls-cert.pem");
  const result = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${hostname}`, "-addext", `subjectAltName=DNS:${hostname}`, "-days", "2", "-keyout", key, "-out", cert], { encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`openssl req exited with ${String(result.status)}: ${result.stderr}`);
  const certPem = await readFile(cert, "utf8");
  await mkdir(dirname(pemFile), { recursive: true });
  await writeFile(pemFile, (await readFile(key, "utf8")) + certPem, { mode: 0o600 });
  return certPem;
}
