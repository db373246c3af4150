// Driving the real panel over HTTP as a browser without JavaScript does: a cookie jar, pages
// fetched, and forms (server actions included) submitted with their hidden fields.
import assert from "node:assert/strict";
import { request } from "node:http";

/** The cookies a browser keeps for the panel. */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** Keeps the cookies an answer sets (and forgets those it deletes). */
  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === "" || /expires=Thu, 01 Jan 1970/i.test(line)) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  /** The Cookie header. */
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

function decode(text: string): string {
  return text.replace(/&quot;/g, '"').replace(/&#x27;|&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

/** A page of the panel, with the jar's cookies; the jar keeps what it sets. */
export async function getPage(base: string, path: string, jar: CookieJar): Promise<{ status: number; html: string; location: string | null }> {
  const response = await fetch(new URL(path, base), { redirect: "manual", headers: { cookie: jar.header() } });
  jar.take(response);
  return { status: response.status, html: decode(await response.text()), location: response.headers.get("location") };
}

/**
 * Submits the form of `path` that has a field named `marker`, with its hidden fields and `fields`.
 * @returns the answer's status, page text (entities decoded) and redirect target.
 */
export async function submitForm(base: string, path: string, marker: string, fields: Readonly<Record<string, string>>, jar: CookieJar, pick?: (form: string) => boolean): Promise<{ status: number; html: string; location: string | null }> {
  const page = await fetch(new URL(path, base), { redirect: "manual", headers: { cookie: jar.header() } });
  jar.take(page);
  assert.equal(page.status, 200, `${path} answers`);
  const html = await page.text();
  const form = [...html.matchAll(/<form[\s\S]*?<\/form>/g)].map((m) => m[0]).find((f) => f.includes(`name="${marker}"`) && (pick?.(decode(f)) ?? true));
  assert.ok(form !== undefined, `${path} has a form with a ${marker} field`);
  const body = new FormData();
  for (const input of form.matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? "";
    if (name !== undefined && !(decode(name) in fields)) body.append(decode(name), decode(value));
  }
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  const response = await fetch(new URL(path, base), { method: "POST", redirect: "manual", body, headers: { cookie: jar.header(), origin: new URL(base).origin } });
  jar.take(response);
  return { status: response.status, html: decode(await response.text()), location: response.headers.get("location") };
}

/** A GET (or another method) with a Host header of one's choosing, as snitch-proxy forwards a request. */
export function requestAs(base: string, method: string, host: string, path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: { host }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: res.headers["content-type"], body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} as ${host}: no answer within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}
