// A certificate authority of the test's own, made with openssl: it issues each VirtualHost's
// certificate the way snickers stores one (key, then chain, in one PEM of mode 0600), and the
// test's clients trust it and nothing else of it.
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

function openssl(args: readonly string[]): void {
  const result = spawnSync("openssl", args, { encoding: "utf8", timeout: 30_000 });
  if (result.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${result.stderr}`);
}

/** A test CA: its certificate (what clients trust) and how it issues a host's PEM. */
export interface TestCa {
  /** The CA's certificate, PEM. */
  readonly certificate: string;
  /**
   * Issues a P-256 certificate for `host` (valid two days) and writes key and chain to `file`
   * (mode 0600), as snickers writes `proxy/certs/<host>.pem`.
   */
  issue(host: string, file: string): Promise<void>;
}

/** Makes a CA in `workDir` (its key never leaves it). */
export async function makeTestCa(workDir: string): Promise<TestCa> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const caKey = join(workDir, "ca-key.pem");
  const caCert = join(workDir, "ca.pem");
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=coyote test ca", "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", caKey, "-out", caCert]);
  const certificate = await readFile(caCert, "utf8");
  let serial = 0;
  return {
    certificate,
    async issue(host: string, file: string): Promise<void> {
      serial += 1;
      const key = join(workDir, `${host}-${serial}-key.pem`);
      const csr = join(workDir, `${host}-${serial}.csr`);
      const cert = join(workDir, `${host}-${serial}.pem`);
      const ext = join(workDir, `${host}-${serial}.ext`);
      await writeFile(ext, `subjectAltName=DNS:${host}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
      openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${host}`, "-keyout", key, "-out", csr]);
      openssl(["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-set_serial", String(1000 + serial), "-days", "2", "-extfile", ext, "-out", cert]);
      await writeFile(file, (await readFile(key, "utf8")) + (await readFile(cert, "utf8")) + certificate, { mode: 0o600 });
    },
  };
}
