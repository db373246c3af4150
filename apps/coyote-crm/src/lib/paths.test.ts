import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encodePath, normalisePath } from "./paths.ts";

const path = (target: string) => {
  const n = normalisePath(target);
  return n.ok ? n.path : `refused: ${n.reason}`;
};

describe("the gate's path", () => {
  test("is decoded and normalised as Next.js routes it", () => {
    assert.equal(path("/%61dmin"), "/admin");
    assert.equal(path("/%41DMIN/services"), "/ADMIN/services");
    assert.equal(path("//admin"), "/admin");
    assert.equal(path("/x/../admin?q=1"), "/admin");
    assert.equal(path("/./admin/./services/"), "/admin/services/");
    assert.equal(path("/x/%2e%2e/admin"), "/admin");
    assert.equal(path("/"), "/");
    assert.equal(path("/caf%C3%A9"), "/café");
  });

  test("what cannot be read one way only is refused", () => {
    for (const bad of ["/%2fadmin", "/%5cadmin", "/%252e%252e/admin", "/%E0%A4%A", "/%zz", "/\\\\admin", "/a\\tb", "/%09admin", "/%00", "/..", "/../admin", "admin", "*", "/%C2%85"]) {
      assert.match(path(bad), /^refused: /, bad);
    }
  });

  test("encodes back to a path that decodes to the same", () => {
    for (const p of ["/admin/services/blog", "/café", "/a b/[id]", "/"]) assert.equal(path(encodePath(p)), p);
  });
});
