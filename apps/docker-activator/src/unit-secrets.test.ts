import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ActivatorUnits, StateStore, validate } from "@coyote/spec";
import { unitEnvironment } from "./runtime.ts";
import { withoutSecretValues, withUnitSecrets } from "./unit-secrets.ts";

const document = (envSecret: string | undefined): ActivatorUnits =>
  validate(ActivatorUnits, {
    schemaVersion: 1,
    generatedAt: new Date(0).toISOString(),
    units: [{ id: "app", serviceId: "app", runtime: "process", command: ["/bin/true"], port: 18123, env: { MODE: "prod" }, ...(envSecret === undefined ? {} : { envSecret }), memoryMb: 64, idleTimeoutSeconds: 60, dumpTimeoutSeconds: 5, readiness: { kind: "tcp" }, readinessTimeoutSeconds: 5 }],
  }, "units.json");

test("a unit gets its environment values from the secret it names, and never writes them back out", async () => {
  const root = await mkdtemp(join(tmpdir(), "coyote-unit-secrets-"));
  try {
    const store = await StateStore.open(root);
    await store.writeSecret("env-app-0123456789ab", JSON.stringify({ API_TOKEN: "tok-secret-123" }));
    const loaded = await withUnitSecrets(document("env-app-0123456789ab"), (name) => store.readSecret(name));
    const unit = loaded.units[0];
    assert.ok(unit !== undefined);
    assert.equal(unitEnvironment(unit).API_TOKEN, "tok-secret-123", "the process or container is given the value");
    assert.equal(unitEnvironment(unit).MODE, "prod");
    assert.doesNotMatch(JSON.stringify(withoutSecretValues(unit)), /tok-secret/, "labels and the process table never hold it");
    await assert.rejects(withUnitSecrets(document("env-app-ffffffffffff"), (name) => store.readSecret(name)), /unit app: its environment secret env-app-ffffffffffff is missing/);
    assert.doesNotMatch(await readFile(join(root, "secrets", "env-app-0123456789ab"), "utf8").then(() => "", () => "missing"), /missing/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
