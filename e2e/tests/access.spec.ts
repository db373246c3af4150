// Who may reach what, and what a bad signup does: every admin page and API (found from the app's
// files) refuses strangers and customers, and every kind of bad signup is refused in place with
// nothing created. Each test brings the box to the state it needs, so the order does not matter.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { APIRequestContext, Browser, BrowserContext, Page } from "@playwright/test";
import { servicesDir, type ApplianceInfo } from "../support/appliance.ts";
import { expect, screenshot, test, watchContext } from "../support/fixtures.ts";
import { CUSTOMER_DOMAIN, CUSTOMER_PASSWORD, ensureActivated, panelUrl, serviceFiles, signUp, submitSignup, unique } from "../support/flows.ts";
import { SAMPLE_PARAM, routesUnder } from "../support/routes.ts";

/** The sidebar's sections (each an admin page) plus a service's page: fewer found means the walk is broken. */
const MIN_ADMIN_PAGES = 10;

/** The admin sidebar's links, in order; each page's h1 is the link's name. */
const SIDEBAR = ["Overview", "Services", "Alarms", "Buddies", "Inbox", "Plans", "History", "Audit log", "Settings"] as const;

/** Activates the box (or signs the admin in) in a throw-away context. */
async function activatedBox(browser: Browser, box: ApplianceInfo): Promise<void> {
  const context = await browser.newContext();
  watchContext(context);
  try {
    await ensureActivated(await context.newPage(), box);
  } finally {
    await context.close();
  }
}

/** A new customer, signed up through the shop, in a context of its own. */
async function newCustomer(browser: Browser, box: ApplianceInfo): Promise<{ context: BrowserContext; page: Page; domain: string }> {
  const context = await browser.newContext();
  watchContext(context);
  const page = await context.newPage();
  const name = unique("cust");
  const domain = `${name}.${CUSTOMER_DOMAIN}`;
  await signUp(page, box, { email: `${name}@example.org`, password: CUSTOMER_PASSWORD, domain });
  return { context, page, domain };
}

/** What a request answered, when it was not what the test expected. */
async function check(api: APIRequestContext, method: "GET" | "POST", url: string, origin: string, want: number, who: string): Promise<string | undefined> {
  const response =
    method === "GET"
      ? await api.get(url, { maxRedirects: 0, headers: { accept: "text/html,application/json" } })
      : await api.post(url, { maxRedirects: 0, headers: { origin, "content-type": "application/json" }, data: "{}" });
  const status = response.status();
  await response.dispose();
  return status === want ? undefined : `${method} ${new URL(url).pathname} as ${who}: ${status}, expected ${want}`;
}

test("every admin page and API answers 401 to strangers and 403 to customers", async ({ browser, page, playwright, box }) => {
  const pages = await routesUnder("admin", "page");
  const apis = await routesUnder(join("api", "admin"), "route");
  const mine = await routesUnder(join("api", "me"), "route");
  test.info().annotations.push({ type: "routes", description: `${pages.length} admin pages, ${apis.length} admin APIs, ${mine.length} customer APIs` });
  expect(pages.length, `admin pages found under apps/coyote-crm/src/app/admin: ${pages.join(", ")}`).toBeGreaterThanOrEqual(MIN_ADMIN_PAGES);
  const wrongForAdmin: string[] = [];

  // The admin's own session proves the walk's URLs are real pages: each one without a sample
  // parameter answers 200 to the admin, so a 401 or 403 below is the gate's, not a 404's.
  await ensureActivated(page, box);
  for (const path of pages.filter((p) => !p.split("/").includes(SAMPLE_PARAM))) {
    const response = await page.request.get(panelUrl(box, path), { maxRedirects: 0 });
    if (response.status() !== 200) wrongForAdmin.push(`GET ${path} as the admin: ${response.status()}, expected 200`);
    await response.dispose();
  }
  expect(wrongForAdmin).toEqual([]);
  const customer = await newCustomer(browser, box);
  const stranger = await playwright.request.newContext();
  const origin = new URL(box.panelUrl).origin;
  const wrong: string[] = [];
  try {
    for (const path of [...pages, ...apis]) {
      const url = panelUrl(box, path);
      for (const method of ["GET", "POST"] as const) {
        const asStranger = await check(stranger, method, url, origin, 401, "a stranger");
        if (asStranger !== undefined) wrong.push(asStranger);
        const asCustomer = await check(customer.context.request, method, url, origin, 403, "a customer");
        if (asCustomer !== undefined) wrong.push(asCustomer);
      }
    }
    // The customer's own API needs a signed-in customer; the prefix itself counts too.
    for (const path of ["/api/me", ...mine]) {
      const problem = await check(stranger, "GET", panelUrl(box, path), origin, 401, "a stranger");
      if (problem !== undefined) wrong.push(problem);
    }
  } finally {
    await stranger.dispose();
    await customer.context.close();
  }
  expect(wrong, `checked ${pages.length} admin pages and ${apis.length} admin APIs`).toEqual([]);
});

test("the admin sidebar leads to each section", async ({ page, box }) => {
  await ensureActivated(page, box);
  const sidebar = page.getByRole("navigation", { name: "Admin" });
  for (const section of SIDEBAR) {
    await sidebar.getByRole("link", { name: section, exact: true }).click();
    await expect(page.getByRole("heading", { level: 1, name: section, exact: true })).toBeVisible();
    await screenshot(page, `admin-${section}`);
  }
});

/** A domain some service already has, or a new customer's. */
async function takenDomain(browser: Browser, box: ApplianceInfo): Promise<string> {
  for (const file of await serviceFiles(box)) {
    const spec = JSON.parse(await readFile(join(servicesDir(box), file), "utf8")) as { domains?: { name?: string }[] };
    const name = spec.domains?.[0]?.name;
    if (name?.endsWith(`.${CUSTOMER_DOMAIN}`)) return name;
  }
  const customer = await newCustomer(browser, box);
  await customer.context.close();
  return customer.domain;
}

interface BadSignup {
  /** What is wrong, for the test's title. */
  readonly what: string;
  /** The form field whose error explains it. */
  readonly field: "Domain" | "Password";
  readonly domain: (browser: Browser, box: ApplianceInfo) => Promise<string>;
  readonly password: string;
}

const BAD_SIGNUPS: readonly BadSignup[] = [
  { what: "a domain that is taken", field: "Domain", domain: takenDomain, password: CUSTOMER_PASSWORD },
  { what: "a domain that is not a domain", field: "Domain", domain: () => Promise.resolve("not a domain!"), password: CUSTOMER_PASSWORD },
  { what: "a weak password", field: "Password", domain: () => Promise.resolve(`${unique("weak")}.${CUSTOMER_DOMAIN}`), password: "password" },
  { what: "a subdomain too deep", field: "Domain", domain: () => Promise.resolve(`a.b.${CUSTOMER_DOMAIN}`), password: CUSTOMER_PASSWORD },
];

for (const bad of BAD_SIGNUPS) {
  test(`signup with ${bad.what} is refused in place and creates nothing`, async ({ browser, page, box }) => {
    await activatedBox(browser, box);
    const domain = await bad.domain(browser, box);
    const email = `${unique("refused")}@example.org`;
    const before = await serviceFiles(box);

    await page.goto(panelUrl(box, "/signup"));
    await submitSignup(page, { email, password: bad.password, domain });
    const field = page.getByLabel(bad.field, { exact: true });
    await expect(field).toHaveAttribute("aria-invalid", "true");
    await expect(field).toHaveAccessibleDescription(/\S/);
    await expect(page).toHaveURL(/\/signup(\?|$)/);
    await screenshot(page, `signup-refused-${bad.what}`);
    expect(await serviceFiles(box)).toEqual(before);

    // No account either: the e-mail cannot sign in.
    await page.goto(panelUrl(box, "/login"));
    await page.getByLabel("E-mail").fill(email);
    await page.getByLabel("Password", { exact: true }).fill(bad.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").first()).toBeVisible();
    await expect(page).toHaveURL(/\/login(\?|$)/);
    await screenshot(page, `sign-in-refused-${bad.what}`);
    expect(await serviceFiles(box)).toEqual(before);
  });
}
