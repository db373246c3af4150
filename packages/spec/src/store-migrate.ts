/**
 * Specs written before today's rules, brought to them: inline password hashes, backend environment
 * values and alarm webhook URLs move to `secrets/`, absolute static roots are confined to the
 * service's site folder. It is the state folder's migration 1 → 2 (migrations/), and it also runs
 * at every open under the store's lock, because a spec in an older shape can come back at any
 * version: written into the work tree by hand, or restored from a copy (the recovery commits it as
 * it is, and this then moves its secret values out).
 */
import { hasInlineCredentials } from "./credentials.ts";
import { storeInlineEnv } from "./env-secrets.ts";
import { describe, idOfRepoPath, serialise, withGeneration, type Change } from "./spec-files.ts";
import type { SpecRepo } from "./spec-repo.ts";
import { migrateLegacyFields, storeInlineCredentials, type SecretFolder } from "./spec-secrets.ts";
import type { Spec } from "./specs.ts";
import { parseSpec } from "./validate.ts";
import { storeInlineWebhooks } from "./webhook-secrets.ts";

/**
 * Rewrites every spec of the work tree that breaks today's rules, as one `migrate: ...` commit
 * (none when all are in shape). Idempotent; secrets are written before the specs that name them.
 */
export async function migrateSpecs(repo: SpecRepo, secrets: SecretFolder): Promise<void> {
  const changes: Change[] = [];
  const what: string[] = [];
  for (const path of await repo.listSpecFiles()) {
    const id = idOfRepoPath(path);
    const text = await repo.readText(`specs/${path}`);
    if (id === undefined || text === undefined) continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      continue;
    }
    const legacy = migrateLegacyFields(value, repo.root);
    let spec: Spec;
    try {
      spec = parseSpec(legacy.value, `specs/${path}`);
    } catch {
      continue;
    }
    if (spec.kind === "Server") {
      if (id !== "server" || spec.alarms.webhooks.length === 0) continue;
      const moved = await storeInlineWebhooks(spec, secrets);
      changes.push({ path, content: serialise(withGeneration(moved, (moved.generation ?? 0) + 1, `specs/${path}`)) });
      what.push("server: alarm webhooks moved to secrets/");
      continue;
    }
    if (spec.id !== id) continue;
    const inline = hasInlineCredentials(spec);
    const backend = spec.web?.backend;
    const inlineEnv = (backend?.kind === "container" || backend?.kind === "process") && Object.keys(backend.env).length > 0;
    if (!inline && !inlineEnv && legacy.changes.length === 0) continue;
    const stored = await storeInlineEnv(await storeInlineCredentials(spec, secrets), secrets);
    // A new generation, so that every daemon applies the spec again in its new shape.
    changes.push({ path, content: serialise(withGeneration(stored, (stored.generation ?? 0) + 1, `specs/${path}`)) });
    what.push(`${describe(id)}: ${[...(inline ? ["credentials moved to secrets/"] : []), ...(inlineEnv ? ["environment values moved to secrets/"] : []), ...legacy.changes].join(", ")}`);
  }
  if (changes.length === 0) return;
  await repo.commitChanges(await repo.headState(), changes, repo.committer, `migrate: ${what.join("; ")}`);
}
