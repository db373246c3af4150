import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_DOCKER_SOCKET, readActivatorEnv } from "./env.ts";

describe("docker-activator's environment", () => {
  it("takes the docker socket from COYOTE_DOCKER_SOCKET, then a unix DOCKER_HOST, then the default", () => {
    assert.equal(readActivatorEnv({ COYOTE_DOCKER_SOCKET: "/run/a.sock", DOCKER_HOST: "unix:///run/b.sock" }).dockerSocket, "/run/a.sock");
    assert.equal(readActivatorEnv({ DOCKER_HOST: "unix:///run/b.sock" }).dockerSocket, "/run/b.sock");
    assert.equal(readActivatorEnv({}).dockerSocket, DEFAULT_DOCKER_SOCKET);
  });

  it("refuses a DOCKER_HOST that is not a local socket", () => {
    assert.throws(() => readActivatorEnv({ DOCKER_HOST: "tcp://10.0.0.1:2375" }), /DOCKER_HOST tcp:\/\/10\.0\.0\.1:2375 is not a unix:\/\/ socket/);
  });

  it("passes PATH and the locale to process units, and nothing else", () => {
    assert.deepEqual(readActivatorEnv({ PATH: "/x/bin", LANG: "C.UTF-8", SECRET_TOKEN: "s3cr3t" }).baseEnv, { PATH: "/x/bin", LANG: "C.UTF-8" });
  });
});
