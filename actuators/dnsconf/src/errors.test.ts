import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { describe, it } from "node:test";
import { waitForTxt } from "./challenges.ts";
import { DnsconfError, type DnsconfErrorCode } from "./errors.ts";
import { dkimFilePath } from "./zone.ts";

/** Checks that `error` is a DnsconfError with `code` and a message matching `message`. */
function isCoded(error: unknown, code: DnsconfErrorCode, message: RegExp): true {
  assert.ok(error instanceof DnsconfError, "a DnsconfError");
  assert.equal(error.code, code);
  assert.match(error.message, message);
  return true;
}

describe("the DNS actuator's coded errors", () => {
  it("a DKIM file path for a name that is not a domain is DNSCONF_ERR_NOT_A_DOMAIN", () => {
    assert.throws(() => dkimFilePath("/var/lib/coyote", "../secrets/x"), (error: unknown) => isCoded(error, "DNSCONF_ERR_NOT_A_DOMAIN", /not a domain name/));
  });

  it("a DNS server that never answers the TXT record is DNSCONF_ERR_TXT_NOT_SERVED", async () => {
    // A loopback socket that reads queries and answers none.
    const silent = createSocket("udp4");
    silent.bind(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const address = `127.0.0.1:${String(silent.address().port)}`;
      await assert.rejects(waitForTxt(address, "_acme-challenge.box.test", "never", 300), (error: unknown) => isCoded(error, "DNSCONF_ERR_TXT_NOT_SERVED", /does not serve TXT never at _acme-challenge\.box\.test/));
    } finally {
      silent.close();
    }
  });
});
