import { randomBytes } from "node:crypto";
import { z } from "zod";
import { HttpUrl } from "./primitives.ts";
import type { SecretFolder } from "./spec-secrets.ts";
import type { ServerSpec } from "./specs.ts";

/**
 * Alarm webhook URLs often carry a token in their path or query, so they live in `secrets/`,
 * never in the server spec (a git history shown in diffs): the secret `webhooks-<version>` holds
 * them as a JSON list, and `alarms.webhooksSecret` names it. The version is random (new whenever
 * the list changes, kept while it does not), so the spec tells nothing about the URLs.
 */

const WEBHOOK_SECRET = /^webhooks-[0-9a-f]{12}$/;
const WebhookList = z.array(HttpUrl).max(100);

function isWebhookSecret(name: string): boolean {
  return WEBHOOK_SECRET.test(name);
}

/**
 * Moves the server spec's inline webhook URLs into a secret (written before the spec naming it).
 * @returns the spec with an empty `alarms.webhooks` and `alarms.webhooksSecret` naming the list.
 */
export async function storeInlineWebhooks(spec: ServerSpec, secrets: SecretFolder): Promise<ServerSpec> {
  if (spec.alarms.webhooks.length === 0) return spec;
  const text = JSON.stringify(spec.alarms.webhooks);
  let name: string | undefined;
  for (const existing of (await secrets.list()).filter(isWebhookSecret)) {
    const bytes = await secrets.read(existing);
    if (bytes !== undefined && Buffer.from(bytes).toString("utf8") === text) name = existing;
  }
  if (name === undefined) {
    name = `webhooks-${randomBytes(6).toString("hex")}`;
    await secrets.write(name, text);
  }
  return { ...spec, alarms: { ...spec.alarms, webhooks: [], webhooksSecret: name } };
}

/** Removes every webhook secret the server spec does not name (all of them without one). */
export async function pruneWebhookSecrets(spec: ServerSpec | undefined, secrets: SecretFolder): Promise<void> {
  const named = spec?.alarms.webhooksSecret;
  for (const name of (await secrets.list()).filter(isWebhookSecret)) if (name !== named) await secrets.remove(name);
}

/**
 * Points a server spec restored from the history at today's webhook secret: an old revision's
 * inline URLs, or a list replaced since, are never brought back (without a list today, the
 * restored spec has none).
 */
export async function rebindToCurrentWebhooks(spec: ServerSpec, secrets: SecretFolder): Promise<ServerSpec> {
  const names = await secrets.list();
  if (spec.alarms.webhooks.length === 0 && (spec.alarms.webhooksSecret === undefined || names.includes(spec.alarms.webhooksSecret))) return spec;
  const current = names.filter(isWebhookSecret)[0];
  const { webhooksSecret: _old, ...alarms } = spec.alarms;
  return { ...spec, alarms: { ...alarms, webhooks: [], ...(current === undefined ? {} : { webhooksSecret: current }) } };
}

/**
 * The alarm webhook URLs of a server spec, read from the secret it names (for whoever sends
 * alarms, and for the panel's form). A missing or unreadable secret gives no URLs.
 * @param read reads a secret by name (the state store's `readSecret`).
 */
export async function readWebhooks(spec: ServerSpec, read: (name: string) => Promise<Uint8Array | undefined>): Promise<string[]> {
  const name = spec.alarms.webhooksSecret;
  if (name === undefined) return [...spec.alarms.webhooks];
  const bytes = await read(name);
  if (bytes === undefined) return [];
  try {
    const parsed = WebhookList.safeParse(JSON.parse(Buffer.from(bytes).toString("utf8")));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}
