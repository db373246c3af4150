import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InboxRequest } from "@coyote/spec";
import { decideRequest } from "./admin/inbox.ts";
import { CrmError } from "./errors.ts";
import { SettingsError } from "./settings.ts";
import { deriveServiceId } from "./shop/domains.ts";
import { writeStarterSite } from "./shop/site.ts";

/** Whether an error is the crm's with that code. */
const crmError = (code: string) => (error: unknown) => error instanceof CrmError && error.code === code;

describe("the crm's coded errors", () => {
  test("deciding a request twice is CRM_ERR_ALREADY_DECIDED, naming who decided it", () => {
    const request: InboxRequest = {
      schemaVersion: 1,
      id: "req-00000001",
      receivedAt: "2026-01-01T00:00:00.000Z",
      from: { address: "https://west.example.org/", fingerprint: `sha256:${"ab".repeat(32)}` },
      request: "monitor",
      state: "pending",
    };
    const decided = decideRequest(request, "accept", "anna@example.org", new Date("2026-01-02T00:00:00.000Z"));
    assert.throws(() => decideRequest(decided, "refuse", "bob@example.org", new Date()), (error: unknown) => crmError("CRM_ERR_ALREADY_DECIDED")(error) && /it was already accepted by anna@example\.org/.test((error as Error).message));
  });

  test("a domain whose every service id is taken is CRM_ERR_SERVICE_IDS_TAKEN", () => {
    assert.throws(() => deriveServiceId("shop.example", () => true), crmError("CRM_ERR_SERVICE_IDS_TAKEN"));
  });

  test("a starter site over an existing folder is CRM_ERR_SITE_WRITE, its cause kept", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "coyote-crm-errors-"));
    try {
      await writeStarterSite(stateDir, "shop", "shop.example");
      await assert.rejects(writeStarterSite(stateDir, "shop", "shop.example"), (error: unknown) => crmError("CRM_ERR_SITE_WRITE")(error) && (error as Error).cause !== undefined);
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test("a refused setting is a CrmError that keeps its field", () => {
    const error = new SettingsError("name", "a buddy is already called west");
    assert.ok(crmError("CRM_ERR_SETTING_REFUSED")(error));
    assert.equal(error.name, "SettingsError");
    assert.equal(error.field, "name");
    assert.equal(error.message, "a buddy is already called west");
  });
});
