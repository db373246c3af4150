/**
 * The store's `secrets/` folder and the hooks that keep secret values out of the specs history:
 * inline password hashes, environment values and webhook URLs move to secrets/ before the spec
 * that names them is written, secrets a spec no longer names are pruned after, and a rollback
 * rebinds old specs to the current secrets instead of bringing old values back.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { writeFileAtomic } from "./atomic.ts";
import { SecretRef } from "./primitives.ts";
import type { ServiceSpec, Spec } from "./specs.ts";
import { pruneCredentials, rebindToCurrentCredentials, storeInlineCredentials, type SecretFolder } from "./spec-secrets.ts";
import { pruneEnvSecrets, rebindToCurrentEnv, storeInlineEnv } from "./env-secrets.ts";
import { rebindToCurrentWebhooks, storeInlineWebhooks } from "./webhook-secrets.ts";
import { ioError, isNotFound, statePath } from "./spec-files.ts";
import { validate } from "./validate.ts";

/** The `secrets/` folder as the store offers it: any bytes in, a Buffer out. */
export interface StoreSecretFolder extends SecretFolder {
  /** Writes a secret (mode 0600, atomically). */
  write(name: string, data: string | Uint8Array): Promise<void>;
  /** Reads a secret, or undefined when there is none. */
  read(name: string): Promise<Buffer | undefined>;
}

/**
 * The `secrets/` folder of a state folder: files of mode 0600 written atomically, each named by a
 * valid secret name (anything else is refused with a ContractError).
 * @param root the state folder, absolute, symbolic links resolved.
 */
export function secretFolder(root: string): StoreSecretFolder {
  const path = (name: string) => statePath(root, `secrets/${name}`);
  return {
    async write(name, data) {
      validate(SecretRef, name, "secret name");
      await writeFileAtomic(path(name), data, { mode: 0o600 });
    },
    async read(name) {
      validate(SecretRef, name, "secret name");
      try {
        return await readFile(path(name));
      } catch (cause) {
        if (isNotFound(cause)) return undefined;
        throw ioError(`reading secret ${name}`, cause);
      }
    },
    async list() {
      try {
        return (await readdir(statePath(root, "secrets"), { withFileTypes: true })).filter((e) => e.isFile() && SecretRef.safeParse(e.name).success).map((e) => e.name).sort();
      } catch (cause) {
        if (isNotFound(cause)) return [];
        throw ioError("listing secrets", cause);
      }
    },
    async remove(name) {
      validate(SecretRef, name, "secret name");
      await rm(path(name), { force: true }).catch((cause: unknown) => Promise.reject(ioError(`removing secret ${name}`, cause)));
    },
  };
}

/**
 * Moves a spec's inline secret values to secrets/ and returns the spec that names them instead: a
 * service's password hashes and environment values, the server's alarm webhook URLs.
 */
export async function storeInlineSecrets(spec: Spec, secrets: SecretFolder): Promise<Spec> {
  return spec.kind === "Service" ? await storeInlineEnv(await storeInlineCredentials(spec, secrets), secrets) : await storeInlineWebhooks(spec, secrets);
}

/** Removes the credential and environment secrets of a service that its spec (undefined once deleted) no longer names. */
export async function pruneServiceSecrets(id: string, spec: ServiceSpec | undefined, secrets: SecretFolder): Promise<void> {
  // One listing for both: with a thousand services the folder holds thousands of names, and each
  // listing validates every one. The second step never removes what the first did.
  const names = await secrets.list();
  const listedOnce: SecretFolder = { ...secrets, list: () => Promise.resolve(names) };
  await pruneCredentials(id, spec, listedOnce);
  await pruneEnvSecrets(id, spec, listedOnce);
}

/**
 * An old revision's spec bound to the current secrets: an old inline hash, or a secret replaced
 * since, is never brought back; each account keeps its current credential.
 * @param file the spec's file and revision, named in errors.
 */
export async function rebindToCurrentSecrets(old: Spec, secrets: SecretFolder, file: string): Promise<Spec> {
  return old.kind === "Service" ? await rebindToCurrentEnv(await rebindToCurrentCredentials(old, secrets, file), secrets, file) : await rebindToCurrentWebhooks(old, secrets);
}
