// The box's settings that live in the server spec (alarm destinations, provider keys, buddies,
// the customer domain, whether signups are open): one validation and one writer each, used by the
// activation wizard and by the admin's settings pages alike.
import { z } from "zod";
import { DomainName, Email, Fingerprint, HttpUrl, ServerSpec, type StateStore } from "@coyote/spec";
import { CrmError } from "./errors.ts";
import { authorOf, readServer } from "./state.ts";

/** The secrets the provider keys are kept in (`secrets/<name>`, mode 0600); the spec names them. */
export const PROVIDER_SECRETS = { vultr: "vultr-api-key", namecheap: "namecheap-api" } as const;

/** Splits a textarea into its non-empty lines (commas separate too). */
export function lines(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

/** Alarm destinations: e-mail addresses and webhook URLs, one per line. */
export const AlarmsInput = z.object({
  emails: z.string().max(10_000).transform((text, ctx) => {
    const out: string[] = [];
    for (const line of lines(text)) {
      const parsed = Email.safeParse(line.toLowerCase());
      if (!parsed.success) ctx.addIssue({ code: "custom", message: `not an e-mail address: ${line}` });
      else if (!out.includes(parsed.data)) out.push(parsed.data);
    }
    return out;
  }),
  webhooks: z.string().max(10_000).transform((text, ctx) => {
    const out: string[] = [];
    for (const line of lines(text)) {
      const parsed = HttpUrl.safeParse(line);
      if (!parsed.success) ctx.addIssue({ code: "custom", message: `not an http(s) URL: ${line}` });
      else if (!out.includes(parsed.data)) out.push(parsed.data);
    }
    return out;
  }),
}).superRefine((value, ctx) => {
  if (value.emails.length === 0 && value.webhooks.length === 0) {
    ctx.addIssue({ code: "custom", path: ["emails"], message: "give at least one e-mail address or webhook, so that someone hears of an alarm" });
  }
});

/** Provider API keys; an empty field keeps the stored key, `remove` drops it. */
export const KeysInput = z.object({
  vultr: z
    .string()
    .trim()
    .refine((v) => v === "" || /^[A-Z0-9]{36}$/.test(v), { error: "a Vultr API key is 36 capital letters and digits (Account → API in Vultr's panel)" }),
  namecheapUser: z
    .string()
    .trim()
    .refine((v) => v === "" || /^[A-Za-z0-9._-]{1,64}$/.test(v), { error: "a Namecheap user name is letters, digits, dot, underscore or hyphen" }),
  namecheapKey: z
    .string()
    .trim()
    .refine((v) => v === "" || /^[a-f0-9]{32}$/i.test(v), { error: "a Namecheap API key is 32 hexadecimal digits (Profile → Tools → API Access)" }),
  removeVultr: z.literal("on").optional(),
  removeNamecheap: z.literal("on").optional(),
}).superRefine((value, ctx) => {
  if ((value.namecheapUser === "") !== (value.namecheapKey === "")) {
    ctx.addIssue({ code: "custom", path: [value.namecheapUser === "" ? "namecheapUser" : "namecheapKey"], message: "Namecheap needs both the user name and the API key" });
  }
});

/** A buddy server. */
export const BuddyInput = z.object({
  name: z.string().trim().min(1, { error: "give the buddy a name" }).max(100),
  address: HttpUrl.refine((u) => u.startsWith("https://"), { error: "a buddy is reached over HTTPS (https://...)" }),
  fingerprint: z.string().trim().toLowerCase().pipe(Fingerprint),
});

/** The shop's settings: the domain customers get subdomains of, and whether signups are open. */
export const ShopInput = z.object({
  customerDomain: z
    .string()
    .trim()
    .toLowerCase()
    .transform((v, ctx) => {
      if (v === "") return undefined;
      const parsed = DomainName.safeParse(v);
      if (!parsed.success) {
        ctx.addIssue({ code: "custom", message: parsed.error.issues[0]?.message ?? "not a valid domain name" });
        return z.NEVER;
      }
      return parsed.data;
    }),
  signupsOpen: z.literal("on").optional(),
});

/** The last four characters of a secret, for "saved (…ABCD)"; never more. */
export function maskSecret(secret: string): string {
  return secret.length <= 8 ? "••••" : `••••${secret.slice(-4)}`;
}

/** Writes a changed server spec as one commit. @returns the new spec. */
export async function updateServer(store: StateStore, actor: string, message: string, change: (spec: ServerSpec) => ServerSpec): Promise<ServerSpec> {
  const current = await readServer(store);
  const next = ServerSpec.parse(change(structuredClone(current)));
  await store.applySpec(next, { author: authorOf(actor), message });
  return next;
}

/** Stores the alarm destinations. */
export async function saveAlarms(store: StateStore, actor: string, input: z.output<typeof AlarmsInput>): Promise<ServerSpec> {
  return updateServer(store, actor, "set the alarm destinations", (spec) => ({ ...spec, alarms: { email: input.emails, webhooks: input.webhooks } }));
}

/** Stores provider keys in `secrets/` and names them in the spec; removes those asked. */
export async function saveKeys(store: StateStore, actor: string, input: z.output<typeof KeysInput>): Promise<ServerSpec> {
  const providers: { vultr?: string; namecheap?: string } = { ...(await readServer(store)).providers };
  if (input.removeVultr === "on") {
    await store.removeSecret(PROVIDER_SECRETS.vultr);
    delete providers.vultr;
  } else if (input.vultr !== "") {
    await store.writeSecret(PROVIDER_SECRETS.vultr, `${input.vultr}\n`);
    providers.vultr = PROVIDER_SECRETS.vultr;
  }
  if (input.removeNamecheap === "on") {
    await store.removeSecret(PROVIDER_SECRETS.namecheap);
    delete providers.namecheap;
  } else if (input.namecheapKey !== "") {
    await store.writeSecret(PROVIDER_SECRETS.namecheap, `${JSON.stringify({ apiUser: input.namecheapUser, apiKey: input.namecheapKey })}\n`);
    providers.namecheap = PROVIDER_SECRETS.namecheap;
  }
  return updateServer(store, actor, "set the provider API keys", (spec) => ({ ...spec, providers }));
}

/** What the panel may show of the stored provider keys: their masks. */
export async function keyMasks(store: StateStore): Promise<{ vultr?: string; namecheap?: string }> {
  const out: { vultr?: string; namecheap?: string } = {};
  const vultr = (await store.readSecret(PROVIDER_SECRETS.vultr))?.toString("utf8").trim();
  if (vultr !== undefined && vultr !== "") out.vultr = maskSecret(vultr);
  const namecheap = (await store.readSecret(PROVIDER_SECRETS.namecheap))?.toString("utf8");
  if (namecheap !== undefined) {
    try {
      const parsed = JSON.parse(namecheap) as { apiUser?: string; apiKey?: string };
      out.namecheap = `${parsed.apiUser ?? "?"} / ${maskSecret(parsed.apiKey ?? "")}`;
    } catch {
      out.namecheap = "(unreadable; save it again)";
    }
  }
  return out;
}

/** Adds a buddy. @throws Error naming the clash when its name or fingerprint is taken. */
export async function addBuddy(store: StateStore, actor: string, input: z.output<typeof BuddyInput>): Promise<ServerSpec> {
  return updateServer(store, actor, `add buddy ${input.name}`, (spec) => {
    if (spec.buddies.some((b) => b.fingerprint === input.fingerprint)) throw new SettingsError("fingerprint", "a buddy with this fingerprint is already added");
    if (spec.buddies.some((b) => b.name === input.name)) throw new SettingsError("name", `a buddy is already called ${input.name}`);
    return { ...spec, buddies: [...spec.buddies, input] };
  });
}

/** Removes a buddy by fingerprint. */
export async function removeBuddy(store: StateStore, actor: string, fingerprint: string): Promise<ServerSpec> {
  return updateServer(store, actor, `remove buddy ${fingerprint}`, (spec) => ({ ...spec, buddies: spec.buddies.filter((b) => b.fingerprint !== fingerprint) }));
}

/** Sets the customer domain and opens or closes signups (only on an activated box). */
export async function saveShop(store: StateStore, actor: string, input: z.output<typeof ShopInput>, activate = false): Promise<ServerSpec> {
  return updateServer(store, actor, activate ? "activate the box" : input.signupsOpen === "on" ? "open signups" : "close signups", (spec) => {
    const next: ServerSpec = { ...spec, activated: activate || spec.activated, signupsOpen: input.signupsOpen === "on" };
    if (input.customerDomain === undefined) delete next.customerDomain;
    else next.customerDomain = input.customerDomain;
    return next;
  });
}

/** A settings change refused for one field (CRM_ERR_SETTING_REFUSED); the form shows it beside that field. */
export class SettingsError extends CrmError {
  /** The form field the change is refused for. */
  readonly field: string;

  /**
   * Makes the error.
   * @param field the form field.
   * @param message what is wrong with it, in lowercase words.
   */
  constructor(field: string, message: string) {
    super("CRM_ERR_SETTING_REFUSED", message);
    this.name = "SettingsError";
    this.field = field;
  }
}
