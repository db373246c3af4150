// Answering an autoconfig lookup (autoconfig.ts) on the panel's listener, before any session or
// page: a public, read-only file for the domains the box serves mail for.
import { stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import type { ServerSpec, StateStore } from "@coyote/spec";
import { autoconfigXml, type AutoconfigAsk } from "./autoconfig.ts";
import { connectionSettings } from "./shop/connection-settings.ts";
import { readServices } from "./state.ts";

/**
 * The domains the box serves mail for (every domain of a service spec with a mail part), read
 * again only when the services' folder changed (a spec write renames a file into it), so that a
 * flood of lookups costs one `stat` each.
 */
export class MailDomains {
  readonly #store: Pick<StateStore, "readSpecs" | "path">;
  #stamp = "";
  #domains: ReadonlySet<string> = new Set();

  /** @param store the state store whose specs name the domains. */
  constructor(store: Pick<StateStore, "readSpecs" | "path">) {
    this.#store = store;
  }

  /** Whether the box serves mail for `domain`. */
  async has(domain: string): Promise<boolean> {
    const folder = await stat(this.#store.path("specs/services")).catch(() => undefined);
    const stamp = folder === undefined ? "none" : `${folder.ino}:${folder.mtimeMs}:${folder.ctimeMs}`;
    if (stamp !== this.#stamp) {
      const services = await readServices(this.#store);
      this.#domains = new Set(services.flatMap((s) => (s.mail === undefined ? [] : s.domains.map((d) => d.name))));
      this.#stamp = stamp;
    }
    return this.#domains.has(domain);
  }
}

function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...extra }).end(`${text}\n`);
}

/**
 * Answers an autoconfig lookup: the domain's `config-v1.1.xml` to GET and HEAD, 404 for a domain
 * without mail here, 400 for a malformed lookup, 405 for any other method.
 */
export async function answerAutoconfig(method: string, ask: Exclude<AutoconfigAsk, { kind: "not-autoconfig" }>, res: ServerResponse, domains: MailDomains, server: Pick<ServerSpec, "hostname" | "mail" | "xmpp">): Promise<void> {
  if (method !== "GET" && method !== "HEAD") {
    plain(res, 405, "autoconfig answers GET only", { allow: "GET, HEAD" });
    return;
  }
  if (ask.kind === "bad") {
    plain(res, 400, `bad autoconfig lookup: ${ask.why}`);
    return;
  }
  if (!(await domains.has(ask.domain))) {
    plain(res, 404, "this box serves no mail for that domain");
    return;
  }
  const body = autoconfigXml(ask.domain, connectionSettings(server));
  res.writeHead(200, { "content-type": "application/xml; charset=utf-8", "content-length": Buffer.byteLength(body), "cache-control": "public, max-age=300" });
  res.end(method === "HEAD" ? undefined : body);
}
