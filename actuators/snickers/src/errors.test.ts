import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createLogger, type CoyoteLogger } from "@coyote/log";
import { AcmeTransportError } from "./acme-http.ts";
import { AcmeIssuer } from "./acme.ts";
import { SnickersError, type SnickersErrorCode } from "./errors.ts";
import { LocalCa } from "./local-ca.ts";

/** Checks that `error` is a SnickersError with `code` and a message matching `message`. */
function isCoded(error: unknown, code: SnickersErrorCode, message: RegExp): true {
  assert.ok(error instanceof SnickersError, "a SnickersError");
  assert.equal(error.code, code);
  assert.match(error.message, message);
  return true;
}

describe("the certificate actuator's coded errors", () => {
  let dir: string;
  let logger: CoyoteLogger;
  // A "CA" on loopback that accepts connections and never says a word, not even a TLS hello.
  let silent: Server;
  const sockets = new Set<Socket>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "snickers-errors-"));
    logger = createLogger({ component: "minion", file: join(dir, "minion.log") });
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await logger.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("an order from a CA that does not answer is SNICKERS_ERR_ORDER_FAILED caused by an AcmeTransportError", async () => {
    const address = silent.address();
    assert.ok(address !== null && typeof address === "object");
    const issuer = new AcmeIssuer({ directoryUrl: `https://127.0.0.1:${String(address.port)}/dir`, email: "admin@box.test", callTimeoutMs: 300 }, { acme: join(dir, "acme"), challenges: join(dir, "challenges") }, logger);
    await assert.rejects(issuer.issue("x.box.test"), (error: unknown) => {
      isCoded(error, "SNICKERS_ERR_ORDER_FAILED", /ordering a certificate for x\.box\.test from https:\/\/127\.0\.0\.1:\d+\/dir: the directory did not answer within/);
      const cause = (error as Error).cause;
      assert.ok(cause instanceof AcmeTransportError, "caused by an AcmeTransportError");
      assert.equal(cause.name, "AcmeTransportError");
      return isCoded(cause, "SNICKERS_ERR_ACME_TRANSPORT", /the directory did not answer within/);
    });
  });

  it("a local CA for a hostname that is not a DNS name is SNICKERS_ERR_INVALID_INPUT", async () => {
    await assert.rejects(LocalCa.open(join(dir, "ca"), "not a host/name"), (error: unknown) => isCoded(error, "SNICKERS_ERR_INVALID_INPUT", /is not a DNS name/));
  });
});
