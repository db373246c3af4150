// Planning file sharing: XmppReady waits until the running Prosody has activated the upload
// service of each domain, as it does for the domain itself and its group chat service.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServiceSpec } from "@coyote/spec";
import { renderHostConfig } from "./render.ts";
import { planXmpp } from "./plan.ts";
import type { XmppObserved } from "./types.ts";

const MAIN = "-- main\n";
const CERTS = "/srv/xmpp/certs";

function spec(xmpp: Record<string, unknown>): ServiceSpec {
  return ServiceSpec.parse({ schemaVersion: 1, kind: "Service", id: "blog", domains: [{ name: "example.org" }], xmpp });
}

/** What observe sees once the host file is written and its certificate copied, with Prosody serving `hosts`. */
function observed(content: string, hosts: readonly string[]): XmppObserved {
  return {
    mainConfig: MAIN,
    hostFiles: [{ file: "example.org.cfg.lua", content, owner: "blog", hosts: ["example.org"] }],
    accounts: new Map(),
    certificates: new Map([["example.org", { issued: "PEM", copy: "PEM", copyMetadataOk: true }]]),
    live: { down: undefined, hosts: new Set(hosts) },
    foldersShared: true,
  };
}

test("XmppReady waits for the upload service when the spec shares files, and only then", () => {
  const settings = { mainConfig: MAIN, certificatesDir: CERTS };
  const certificate = `${CERTS}/example.org.pem`;
  const sharing = renderHostConfig("example.org", "blog", { certificate, fileSharing: { sizeLimitMb: 20 } });
  const waiting = planXmpp({ id: "blog", spec: spec({ fileSharing: true, fileSizeLimitMb: 20 }) }, observed(sharing, ["example.org"]), settings);
  assert.deepEqual(waiting.steps.map((step) => step.kind), ["await-prosody"], waiting.describe.join("; "));
  assert.match(waiting.describe.join("; "), /prosody has not activated upload\.example\.org yet/);

  const served = planXmpp({ id: "blog", spec: spec({ fileSharing: true, fileSizeLimitMb: 20 }) }, observed(sharing, ["example.org", "upload.example.org"]), settings);
  assert.deepEqual(served.steps, [], served.describe.join("; "));

  const plain = renderHostConfig("example.org", "blog", { certificate });
  const without = planXmpp({ id: "blog", spec: spec({}) }, observed(plain, ["example.org"]), settings);
  assert.deepEqual(without.steps, [], "no upload service is awaited without file sharing");

  const turnedOn = planXmpp({ id: "blog", spec: spec({ fileSharing: true }) }, observed(plain, ["example.org"]), settings);
  const write = turnedOn.steps.find((step) => step.kind === "write-host");
  assert.ok(write?.kind === "write-host" && /^http_file_share_size_limit = 10485760$/m.test(write.content), "10 MB when the spec names no limit");
});
