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

  it("confines units by default and takes a fallback network and the units' user only when they are valid", () => {
    assert.deepEqual(readActivatorEnv({}).unitNetwork, "bridge");
    assert.equal(readActivatorEnv({}).unitUser, undefined);
    assert.equal(readActivatorEnv({ COYOTE_UNIT_NETWORK: "host" }).unitNetwork, "host");
    assert.throws(() => readActivatorEnv({ COYOTE_UNIT_NETWORK: "none" }), /COYOTE_UNIT_NETWORK none is neither bridge nor host/);
    assert.deepEqual(readActivatorEnv({ COYOTE_UNIT_USER: "990:990" }).unitUser, { uid: 990, gid: 990 });
    for (const bad of ["0:0", "990:0", "nobody", "990", "-1:5"]) assert.throws(() => readActivatorEnv({ COYOTE_UNIT_USER: bad }), /COYOTE_UNIT_USER/, bad);
  });

  it("passes PATH and the locale to process units, and nothing else", () => {
    assert.deepEqual(readActivatorEnv({ PATH: "/x/bin", LANG: "C.UTF-8", SECRET_TOKEN: "s3cr3t" }).baseEnv, { PATH: "/x/bin", LANG: "C.UTF-8" });
  });
});
