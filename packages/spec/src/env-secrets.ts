import { randomBytes } from "node:crypto";
import { ContractError } from "./errors.ts";
import { Environment } from "./primitives.ts";
import type { SecretFolder } from "./spec-secrets.ts";
import type { ServiceSpec } from "./specs.ts";

/**
 * A backend's environment values live in `secrets/`, never in a spec (a git history shown in
 * diffs): the secret `env-<service>-<version>` holds them as a JSON object, and the spec's
 * `envSecret` names it. `<version>` is random (a digest of the values would let anyone who reads
 * the spec test guesses of a short value), new whenever the values change, so that a change
 * still changes the spec (a commit, which wakes the minion); the same values keep their name.
 */

/** The prefix of every environment secret of a service. */
export function envSecretPrefix(serviceId: string): string {
  return `env-${serviceId}-`;
}

function canonicalEnv(env: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));
}

type Sleeping = Extract<NonNullable<ServiceSpec["web"]>["backend"], { kind: "container" | "process" }>;

function sleepingBackend(spec: ServiceSpec): Sleeping | undefined {
  const backend = spec.web?.backend;
  return backend?.kind === "container" || backend?.kind === "process" ? backend : undefined;
}

function withBackend(spec: ServiceSpec, backend: Sleeping): ServiceSpec {
  return spec.web === undefined ? spec : { ...spec, web: { ...spec.web, backend } };
}

/**
 * Parses an environment secret's bytes.
 * @throws ContractError naming the secret when it is not a JSON object of variable names to strings.
 */
export function parseEnvSecret(bytes: Uint8Array, name: string): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (cause) {
    throw new ContractError("SPEC_ERR_PARSE", `secrets/${name}`, [{ field: "(root)", message: "not valid JSON" }], { cause });
  }
  const parsed = Environment.safeParse(value);
  if (!parsed.success) throw new ContractError("SPEC_ERR_INVALID", `secrets/${name}`, [{ field: "(root)", message: "not an object of environment variable names to strings" }]);
  return parsed.data;
}

/**
 * Moves a spec's inline environment values into a secret (written before the spec that names
 * it). Inline values are laid over those of the secret the spec already names.
 * @returns the spec with an empty `env` and `envSecret` naming the values' secret.
 */
export async function storeInlineEnv(spec: ServiceSpec, secrets: SecretFolder): Promise<ServiceSpec> {
  const backend = sleepingBackend(spec);
  if (backend === undefined || Object.keys(backend.env).length === 0) return spec;
  const before = backend.envSecret === undefined ? undefined : await secrets.read(backend.envSecret);
  const env = { ...(before === undefined || backend.envSecret === undefined ? {} : parseEnvSecret(before, backend.envSecret)), ...backend.env };
  const text = canonicalEnv(env);
  let name: string | undefined;
  for (const existing of await secrets.list()) {
    if (!isEnvSecretOf(spec.id, existing)) continue;
    const bytes = await secrets.read(existing);
    if (bytes !== undefined && Buffer.from(bytes).toString("utf8") === text) name = existing;
  }
  if (name === undefined) {
    name = `${envSecretPrefix(spec.id)}${randomBytes(6).toString("hex")}`;
    await secrets.write(name, text);
  }
  return withBackend(spec, { ...backend, env: {}, envSecret: name });
}

/** Whether a secret name is one of a service's environment secrets. */
function isEnvSecretOf(serviceId: string, name: string): boolean {
  const prefix = envSecretPrefix(serviceId);
  return name.startsWith(prefix) && /^[0-9a-f]{12}$/.test(name.slice(prefix.length));
}

/**
 * Removes every environment secret of a service that its spec does not name (all of them when
 * the service is gone).
 */
export async function pruneEnvSecrets(serviceId: string, spec: ServiceSpec | undefined, secrets: SecretFolder): Promise<void> {
  const named = spec === undefined ? undefined : sleepingBackend(spec)?.envSecret;
  for (const name of await secrets.list()) {
    if (isEnvSecretOf(serviceId, name) && name !== named) await secrets.remove(name);
  }
}

/**
 * Points a spec restored from the history at the service's current environment secret: an old
 * revision's inline values, or a secret replaced since, are never brought back.
 * @throws ContractError naming `web.backend.envSecret` when the revision had values and the
 *   service has none any more.
 */
export async function rebindToCurrentEnv(spec: ServiceSpec, secrets: SecretFolder, file: string): Promise<ServiceSpec> {
  const backend = sleepingBackend(spec);
  if (backend === undefined) return spec;
  const names = await secrets.list();
  const inline = Object.keys(backend.env).length > 0;
  if (!inline && (backend.envSecret === undefined || names.includes(backend.envSecret))) return spec;
  const current = names.filter((name) => isEnvSecretOf(spec.id, name))[0];
  if (current === undefined) {
    throw new ContractError("SPEC_ERR_INVALID", file, [{ field: "web.backend.envSecret", message: "the environment values of this revision were removed since; removed values are never restored, so set them again after the rollback or roll back to a later revision" }]);
  }
  return withBackend(spec, { ...backend, env: {}, envSecret: current });
}
