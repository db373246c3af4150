import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { testServer } from "../../test/accounts.ts";
import { connectionSettings, portOf } from "./connection-settings.ts";

describe("connectionSettings", () => {
  it("takes the host and every port from the server spec", () => {
    const server = testServer({
      hostname: "mx.example.net",
      mail: { smtpListen: "127.0.0.1:2525", imapsListen: "127.0.0.1:10993", imapListen: "127.0.0.1:10143", submissionsListen: "[::1]:10465", submissionListen: "0.0.0.0:10587" },
      xmpp: { clientPort: 15222 },
    });
    assert.deepEqual(connectionSettings(server), {
      host: "mx.example.net",
      imap: [{ port: 10993, security: "TLS" }, { port: 10143, security: "STARTTLS" }],
      smtp: [{ port: 10465, security: "TLS" }, { port: 10587, security: "STARTTLS" }],
      xmpp: { port: 15222, security: "STARTTLS" },
    });
  });

  it("shows the embedded default's loopback listeners where the spec names none", () => {
    assert.deepEqual(connectionSettings(testServer()), {
      host: "coyote.box.test",
      imap: [{ port: 2993, security: "TLS" }, { port: 2143, security: "STARTTLS" }],
      smtp: [{ port: 2465, security: "TLS" }, { port: 2587, security: "STARTTLS" }],
      xmpp: { port: 5222, security: "STARTTLS" },
    });
  });

  it("reads a listener's port, and falls back on anything else", () => {
    assert.equal(portOf("[2001:db8::1]:993", 1), 993);
    assert.equal(portOf("box:0", 7), 7);
    assert.equal(portOf("box:99999", 7), 7);
    assert.equal(portOf("box", 7), 7);
    assert.equal(portOf(undefined, 7), 7);
  });
});
