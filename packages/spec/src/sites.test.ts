import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CoyoteError } from "./errors.ts";
import { siteFolder, staticRootFolder } from "./sites.ts";

describe("static roots", () => {
  test("a static root resolves inside the service's own site folder", () => {
    assert.equal(siteFolder("/var/lib/coyote", "blog"), "/var/lib/coyote/sites/blog");
    assert.equal(staticRootFolder("/var/lib/coyote", "blog", "."), "/var/lib/coyote/sites/blog");
    assert.equal(staticRootFolder("/var/lib/coyote", "blog", "public/www"), "/var/lib/coyote/sites/blog/public/www");
  });

  test("a root that would leave the site folder is refused even when the schema was bypassed", () => {
    for (const root of ["/", "/var/lib/coyote/secrets", "..", "../other", "public/../../secrets", "a\\..\\..", "", "public\u0000"]) {
      assert.throws(() => staticRootFolder("/var/lib/coyote", "blog", root), (error: unknown) => error instanceof CoyoteError && /not a folder inside sites\/blog/.test(error.message), root);
    }
  });

  test("a service id that is not one cannot name another folder", () => {
    assert.throws(() => siteFolder("/var/lib/coyote", "../secrets"), /not a service id/);
  });
});
