// The shape rules of the shared config, run on small sources with ESLint's own Linter.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";
import { shapePlugin } from "./index.js";

const repo = join(import.meta.dirname, "..", "..");

/** The messages of the no-test-imports rule for a source in a file of the repo. */
function testImportErrors(file, code) {
  const linter = new Linter({ configType: "flat", cwd: repo });
  const config = [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser }, plugins: { coyote: shapePlugin }, rules: { "coyote/no-test-imports": "error" } }];
  return linter.verify(code, config, { filename: join(repo, file) }).map((m) => m.message);
}

test("product code may not import a test helper: the package's src/test/, a package's testing export, @coyote/testing", () => {
  for (const source of ["./test/support.ts", "../test/support.ts", "@coyote/testing", "@coyote/snitch-proxy/testing"]) {
    const errors = testImportErrors("apps/minion/src/minion.ts", `import { x } from "${source}";\nexport { x };\n`);
    assert.equal(errors.length, 1, source);
    assert.match(errors[0], /is a test helper/);
  }
  assert.equal(testImportErrors("apps/minion/src/minion.ts", `export { y } from "./test/support.ts";\n`).length, 1);
  assert.equal(testImportErrors("apps/minion/src/minion.ts", `export async function f() { return import("./test/support.ts"); }\n`).length, 1);
});

test("other imports pass: the package's own modules, packages, a folder whose name only starts with test", () => {
  for (const source of ["./reconcile.ts", "../src/index.ts", "@coyote/spec", "@coyote/test-reporter", "./testimony.ts", "node:test"]) {
    assert.deepEqual(testImportErrors("apps/minion/src/minion.ts", `import { x } from "${source}";\nexport { x };\n`), [], source);
  }
});
