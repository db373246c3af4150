// A signed-up customer for the account pages' tests: a sandbox with a server spec, the default
// plan, and one signup made through the shop's own signup path.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { deriveScram, parseScram, ServerSpec, validate, type ServiceSpec } from "@coyote/spec";
import { setScryptParams } from "../lib/passwords.ts";
import { ensureDefaultPlan } from "../lib/plans.ts";
import { signUp } from "../lib/shop/signup.ts";
import { sandbox, type Sandbox } from "./support.ts";

/** The password the customer signs up with. */
export const SIGNUP_PASSWORD = "correct horse battery";

/** The box's server spec in these tests. */
export function testServer(overrides: Record<string, unknown> = {}): ServerSpec {
  return validate(ServerSpec, { schemaVersion: 1, kind: "Server", name: "Test box", hostname: "coyote.box.test", customerDomain: "box.test", activated: true, signupsOpen: true, ...overrides }, "(test server)");
}

/** A sandbox with one customer (alice@mail.example, service `alice-box-test` on alice.box.test). */
export interface Customer {
  readonly box: Sandbox;
  readonly server: ServerSpec;
  readonly user: { readonly id: string; readonly email: string };
  readonly serviceId: string;
  readonly domain: string;
}

/** Signs a customer up in a fresh sandbox, through the shop's signup. */
export async function signedUpCustomer(input: { email?: string; domain?: string; plan?: string } = {}): Promise<Customer> {
  // Production hashes cost 128 MiB each: the tests use cheap ones (the parameters are stored in each hash).
  setScryptParams({ logN: 10, r: 8, p: 1 });
  const box = await sandbox();
  const server = testServer();
  await box.store.applySpec(server, { author: { name: "admin", email: "admin@box.test" } });
  ensureDefaultPlan(box.db);
  const email = input.email ?? "alice@mail.example";
  const domain = input.domain ?? "alice.box.test";
  const result = await signUp(
    { db: box.db, store: box.store, server, stateDir: box.dir, clientAddress: "192.0.2.1" },
    { email, password: SIGNUP_PASSWORD, confirm: SIGNUP_PASSWORD, domain, plan: input.plan ?? "starter" },
  );
  assert.ok(result.ok, JSON.stringify(result));
  return { box, server, user: { id: result.userId, email }, serviceId: result.serviceId, domain };
}

/** The service's spec as stored. */
export async function serviceSpec(customer: Customer): Promise<ServiceSpec> {
  const spec = await customer.box.store.getSpec(customer.serviceId);
  assert.ok(spec?.kind === "Service", `${customer.serviceId} is a service spec`);
  return spec;
}

/** The stored hash of an account (`mail` by address, `xmpp` by JID), read from the secret its spec names. */
export async function storedHash(customer: Customer, kind: "mail" | "xmpp", account: string): Promise<string | undefined> {
  const spec = await serviceSpec(customer);
  const credential =
    kind === "mail" ? spec.mail?.mailboxes.find((b) => b.address === account)?.credential : spec.xmpp?.users.find((u) => `${u.username}@${u.domain}` === account)?.credential;
  if (credential === undefined) return undefined;
  return (await customer.box.store.readSecret(credential))?.toString("utf8").trim();
}

/** Whether a SCRAM credential verifies a password (the same derivation Dovecot and Prosody make). */
export function scramVerifies(hash: string, password: string): boolean {
  const parsed = parseScram(hash);
  if (!parsed.ok) return false;
  const { credential } = parsed;
  return deriveScram(credential.hash, password, credential.salt, credential.iterations).storedKey.equals(credential.storedKey);
}

/** Dovecot's own verdict on a credential and a password (`doveadm pw -t`); a missing doveadm fails with CI=true. */
export function doveadmVerifies(hash: string, password: string): boolean | undefined {
  const run = spawnSync("doveadm", ["pw", "-t", hash, "-p", password], { encoding: "utf8", timeout: 30_000 });
  if (run.error !== undefined) {
    if (process.env.CI === "true") assert.fail(`doveadm is needed with CI=true: ${run.error.message}`);
    return undefined;
  }
  return /\(verified\)/.test(run.stdout);
}
