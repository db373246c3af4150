// The panel's forwarding secret as snitch-proxy reads it: a usable file is taken, a missing,
// oversized, multi-line or non-regular one gives no secret and one logged error, and a change is
// picked up by the background check.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { ForwardingSecret, MAX_SECRET_BYTES, forwardingSecretFile } from "./forwarding-secret.ts";

const GOOD = "A".repeat(43);
const OTHER = "b_-".repeat(15);

describe("the panel's forwarding secret", () => {
  let dir: string;
  let file: string;
  let lines: string[];
  let logger: CoyoteLogger;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "snitch-secret-"));
    await mkdir(join(dir, "secrets"), { mode: 0o700 });
    file = forwardingSecretFile(dir);
    lines = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString("utf8").split("\n").filter((l) => l !== ""));
        done();
      },
    });
    logger = createLogger({ component: "snitch-proxy", destination });
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** The error records logged since `from`. */
  const errorsSince = (from: number) => lines.slice(from).map((l) => JSON.parse(l) as { event?: string; reason?: string }).filter((r) => r.event === "ERROR");

  it("reads the file at start and picks up a change by itself", async () => {
    await writeFile(file, `${GOOD}\n`, { mode: 0o600 });
    const secret = new ForwardingSecret(file, logger, 50);
    await secret.start();
    try {
      assert.equal(secret.forPanel(), GOOD);
      await writeFile(`${file}.new`, OTHER, { mode: 0o600 });
      execFileSync("mv", [`${file}.new`, file]);
      for (let i = 0; i < 100 && secret.forPanel() !== OTHER; i++) await sleep(20);
      assert.equal(secret.forPanel(), OTHER);
    } finally {
      secret.stop();
    }
  });

  it("sends nothing while the file is missing, logs that once, and takes the file once it is there", async () => {
    await rm(file, { force: true });
    const secret = new ForwardingSecret(file, logger, 50);
    const from = lines.length;
    await secret.start();
    try {
      assert.equal(secret.forPanel(), undefined);
      assert.equal(secret.forPanel(), undefined);
      await sleep(150);
      assert.equal(secret.forPanel(), undefined);
      const errors = errorsSince(from);
      assert.equal(errors.length, 1, "one error for as long as the file is missing");
      assert.match(errors[0]?.reason ?? "", /panel-forwarding-token does not exist/);
      await writeFile(file, GOOD, { mode: 0o600 });
      for (let i = 0; i < 100 && secret.forPanel() === undefined; i++) await sleep(20);
      assert.equal(secret.forPanel(), GOOD);
    } finally {
      secret.stop();
    }
  });

  for (const [what, content, reason] of [
    ["an oversized file", "A".repeat(MAX_SECRET_BYTES + 1), /larger than 1024 bytes/],
    ["two lines", `${GOOD}\n${GOOD}`, /not one line/],
    ["a header injection", `${GOOD}\r\nx-forwarded-for: 1.2.3.4`, /not one line/],
    ["a short secret", "short", /not one line/],
    ["an empty file", "", /not one line/],
  ] as const) {
    it(`refuses ${what}: no secret and a logged error`, async () => {
      await writeFile(file, GOOD, { mode: 0o600 });
      const secret = new ForwardingSecret(file, logger, 60_000);
      await secret.start();
      try {
        assert.equal(secret.forPanel(), GOOD);
        const from = lines.length;
        await writeFile(file, content);
        await secret.check();
        assert.equal(secret.forPanel(), undefined);
        const errors = errorsSince(from);
        assert.equal(errors.length, 1);
        assert.match(errors[0]?.reason ?? "", reason);
      } finally {
        secret.stop();
      }
    });
  }

  it("refuses a FIFO in the secret's place, without hanging on it", async () => {
    await rm(file, { force: true });
    execFileSync("mkfifo", [file]);
    const secret = new ForwardingSecret(file, logger, 60_000);
    const from = lines.length;
    try {
      const checked = await Promise.race([secret.start().then(() => true), sleep(2000).then(() => false)]);
      assert.ok(checked, "the check finished");
      assert.equal(secret.forPanel(), undefined);
      assert.match(errorsSince(from)[0]?.reason ?? "", /not a regular file/);
    } finally {
      secret.stop();
      await rm(file, { force: true });
    }
  });
});
