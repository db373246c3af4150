import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateStore, certificateFile } from "./certs.ts";
import { SnitchProxyError } from "./errors.ts";
import { startProxy } from "./proxy.ts";
import { sandbox } from "./test/support.ts";

describe("snitch-proxy's coded errors", () => {
  it("a certificate file without a usable key and certificate is SNITCH_ERR_CERT_INVALID, naming the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "coyote-certs-"));
    try {
      mkdirSync(dir, { recursive: true });
      const file = certificateFile(dir, "broken.test");
      writeFileSync(file, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n", { mode: 0o600 });
      await assert.rejects(new CertificateStore(dir).find("broken.test"), (error: unknown) => {
        assert.ok(error instanceof SnitchProxyError);
        assert.equal(error.code, "SNITCH_ERR_CERT_INVALID");
        assert.ok(error.message.startsWith(`loading certificate ${file}: `), error.message);
        assert.ok(error.cause instanceof Error);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a connection limit that is not a positive whole number is SNITCH_ERR_LIMIT_INVALID", async () => {
    const box = await sandbox();
    const proxy = await startProxy({ stateDir: box.stateDir, logger: box.logger, https: { host: "127.0.0.1", port: 0 }, writeStats: false });
    try {
      for (const limit of [0, -1, 1.5, Number.NaN]) {
        assert.throws(() => proxy.setMaxConnections(limit), (error: unknown) => error instanceof SnitchProxyError && error.code === "SNITCH_ERR_LIMIT_INVALID");
      }
    } finally {
      await proxy.stop(100);
      await box.cleanup();
    }
  });
});
