// A real browser on the installed box: the machine's headless Chromium, with the box's hostname
// resolved to the machine's address and only the certificate key the box serves (verified by Node
// against the box's CA first) accepted, as an admin's browser that trusts the CA would.
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's Chromium; the tests never download a browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** A browser that reaches `host` at `address` and accepts the certificate whose key has the pin `keyPin`. */
export async function browserFor(host: string, address: string, keyPin: string): Promise<Browser> {
  if (!/^[a-z0-9.-]+$/.test(host) || !/^[0-9.]+$/.test(address)) throw new Error(`browserFor: ${host} at ${address} is not a host name and an IPv4 address`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60_000,
    args: [`--host-resolver-rules=MAP ${host} ${address}`, `--ignore-certificate-errors-spki-list=${keyPin}`, "--no-sandbox"],
  });
}

/** The admin account the installer tests create when they activate the box. */
export const ADMIN = { email: "admin@box.coyote.test", password: "correct horse battery staple" } as const;

/** The page's first h1, once there is one (at most 30 s). */
export async function heading(page: Page): Promise<string> {
  const h1 = page.getByRole("heading", { level: 1 }).first();
  await h1.waitFor({ state: "visible", timeout: 30_000 });
  return (await h1.innerText()).trim();
}

/** The customer domain the installer tests' box is given when it is activated. */
export const CUSTOMER_DOMAIN = "customers.coyote.test";

/**
 * Activates the box at `https://<host>/` with the one-time token, through the whole wizard as an
 * admin would: the admin account (which spends the token), alarms as they are, no provider keys,
 * no buddy, the shop opened on {@link CUSTOMER_DOMAIN}. Returns the headings of the steps it
 * went through, the page it ends on last.
 * @throws Error naming the page when the wizard shows one it does not expect, or takes over 15 tries.
 */
export async function activate(page: Page, host: string, token: string): Promise<string[]> {
  await page.goto(`https://${host}/activate`, { timeout: 60_000 });
  const seen: string[] = [];
  for (let step = 0; step < 15; step++) {
    // A click before the page's scripts have run can be lost on a loaded machine: wait for them,
    // and when a step does not move on, read the page again and do the step again.
    await page.waitForLoadState("networkidle", { timeout: 30_000 }).catch(() => undefined);
    const h1 = await heading(page);
    if (seen.at(-1) !== h1) seen.push(h1);
    const before = page.url();
    switch (h1) {
      case "Activate this box":
        if ((await page.getByLabel("Activation token").count()) === 0) {
          // The admin account was made by a submission that was slow to answer: sign in, go on.
          await signIn(page, host);
          await page.goto(`https://${host}/activate`, { timeout: 60_000 });
          continue;
        }
        await page.getByLabel("Activation token").fill(token);
        await page.getByLabel("Admin e-mail").fill(ADMIN.email);
        await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
        await page.getByLabel("Repeat password").fill(ADMIN.password);
        await page.getByRole("button", { name: "Activate" }).click();
        break;
      case "Alarms":
        await page.getByRole("button", { name: "Save and continue" }).click();
        break;
      case "Provider API keys":
      case "Buddy server":
        await page.getByRole("button", { name: "Skip for now" }).click();
        break;
      case "Open the shop":
        await page.getByLabel("Customer domain").fill(CUSTOMER_DOMAIN);
        await page.getByLabel("Open signups now").check();
        await page.getByRole("button", { name: "Finish activation" }).click();
        break;
      default:
        if (new URL(page.url()).pathname.startsWith("/activate")) throw new Error(`activating: an unexpected page "${h1}" at ${page.url()}`);
        return seen;
    }
    await page.waitForURL((url) => url.toString() !== before, { timeout: 30_000 }).catch(() => undefined);
  }
  throw new Error(`activating: still in the wizard after 15 tries (${seen.join(" → ")})`);
}

/** Signs the admin in at `https://<host>/login`; returns the heading of the page it lands on. */
export async function signIn(page: Page, host: string): Promise<string> {
  await page.goto(`https://${host}/login`, { timeout: 60_000 });
  const first = await heading(page);
  if (first !== "Sign in") throw new Error(`signing in: the page says "${first}", not "Sign in"`);
  await page.getByLabel("E-mail").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.pathname !== "/login", { timeout: 60_000 });
  return heading(page);
}
