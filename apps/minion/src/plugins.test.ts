import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { createLogger } from "@coyote/log";
import { PluginFolder } from "./plugins.ts";

const ACTUATOR = (id: string) => `export function createActuator() {
  return { id: "${id}", condition: "Stamped", observe: async () => undefined, plan: () => ({ steps: [], describe: [] }), apply: async () => {} };
}
`;

describe("PluginFolder", () => {
  test("a plugin it cannot load is logged with the code that says why, and skipped", async () => {
    const root = mkdtempSync(join(tmpdir(), "coyote-plugins-"));
    try {
      const dir = join(root, "actuators");
      const plugin = (name: string, source: string) => {
        mkdirSync(join(dir, name), { recursive: true });
        writeFileSync(join(dir, name, "index.js"), source);
      };
      plugin("empty", "export const nothing = 1;\n");
      plugin("twin", ACTUATOR("actuator.bundled"));
      plugin("good", ACTUATOR("actuator.good"));
      const lines: string[] = [];
      const destination = new PassThrough();
      destination.on("data", (chunk: Buffer) => lines.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
      const folder = new PluginFolder(dir, root, createLogger({ component: "minion", destination }));

      assert.equal(await folder.scan(new Set(["actuator.bundled"])), true);
      assert.deepEqual(folder.actuators.map((a) => a.id), ["actuator.good"]);
      const errors = lines.map((line) => JSON.parse(line) as { event?: string; plugin?: string; err?: { code?: string; message?: string } }).filter((r) => r.event === "ERROR");
      const codeOf = (name: string) => errors.find((r) => r.plugin === name)?.err?.code;
      assert.equal(codeOf("empty"), "MINION_ERR_PLUGIN_INVALID");
      assert.equal(codeOf("twin"), "MINION_ERR_ACTUATOR_ID_TAKEN");
      assert.match(errors.find((r) => r.plugin === "twin")?.err?.message ?? "", /its id actuator\.bundled is already taken/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
