// The whole story of the appliance on one fresh box, in order: the admin activates the box, a customer
// signs up and gets a working site over HTTPS, the admin sees the service and its traffic.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "@playwright/test";
import { CHROMIUM } from "../support/appliance.ts";
import { expect, screenshot, test, watchContext } from "../support/fixtures.ts";
import { ADMIN, CUSTOMER_DOMAIN, CUSTOMER_PASSWORD, PLAN, fillActivation, panelUrl, signIn, signOut, submitSignup } from "../support/flows.ts";
import { fetchSite } from "../support/https.ts";

const ALICE = { email: "alice@example.org", password: CUSTOMER_PASSWORD, domain: "alice.box.test" } as const;

// One page walks the whole story; each test is one chapter and needs the ones before it.
test.describe.configure({ mode: "serial" });

let context: BrowserContext;
let page: Page;
let serviceId = "";

async function serverSpec(stateDir: string): Promise<{ activated?: boolean; signupsOpen?: boolean; customerDomain?: string }> {
  return JSON.parse(await readFile(join(stateDir, "specs", "server.json"), "utf8")) as { activated?: boolean; signupsOpen?: boolean; customerDomain?: string };
}

test.beforeAll(async ({ browser }) => {
  context = await browser.newContext();
  watchContext(context);
  page = await context.newPage();
});

test.afterAll(async () => {
  await context.close();
});

test("a fresh box sends its start page to the activation wizard", async ({ box }) => {
  await page.goto(box.panelUrl);
  await expect(page).toHaveURL(panelUrl(box, "/activate"));
  await expect(page.getByRole("heading", { level: 1, name: "Activate this box" })).toBeVisible();
  await screenshot(page, "activate");
});

test("a wrong activation token is refused and the wizard stays on its first step", async ({ box }) => {
  const wrong = box.activationToken.startsWith("AAAA") ? "BBBB-BBBB-BBBB-BBBB-BBBB" : "AAAA-AAAA-AAAA-AAAA-AAAA";
  await fillActivation(page, wrong);
  await page.getByRole("button", { name: "Activate" }).click();
  await expect(page.getByLabel("Activation token")).toHaveAccessibleDescription(/token/i);
  await expect(page).toHaveURL(panelUrl(box, "/activate"));
  await expect(page.getByRole("heading", { level: 1, name: "Activate this box" })).toBeVisible();
  expect((await serverSpec(box.stateDir)).activated ?? false).toBe(false);
  await screenshot(page, "activate-wrong-token");
});

test("the right token and an admin account lead to the alarms step", async ({ box }) => {
  await fillActivation(page, box.activationToken);
  await page.getByRole("button", { name: "Activate" }).click();
  await expect(page).toHaveURL(panelUrl(box, "/activate/alarms"));
  await expect(page.getByRole("heading", { level: 1, name: "Alarms" })).toBeVisible();
  await screenshot(page, "activate-alarms");
  await page.getByLabel("Alarm e-mail addresses").fill("alarms@box.test");
  await page.getByLabel("Alarm webhooks").fill("");
  await page.getByRole("button", { name: "Save and continue" }).click();
  await expect(page).toHaveURL(panelUrl(box, "/activate/keys"));
  await expect(page.getByRole("heading", { level: 1, name: "Provider API keys" })).toBeVisible();
  await screenshot(page, "activate-keys");
});

test("provider keys and the buddy can wait", async ({ box }) => {
  await page.getByRole("button", { name: "Skip for now" }).click();
  await expect(page).toHaveURL(panelUrl(box, "/activate/buddy"));
  await expect(page.getByRole("heading", { level: 1, name: "Buddy server" })).toBeVisible();
  await screenshot(page, "activate-buddy");
  await page.getByRole("button", { name: "Skip for now" }).click();
  await expect(page).toHaveURL(panelUrl(box, "/activate/finish"));
  await expect(page.getByRole("heading", { level: 1, name: "Open the shop" })).toBeVisible();
  await screenshot(page, "activate-finish");
});

test("finishing opens the shop and shows the admin panel, which warns that there is no buddy", async ({ box }) => {
  await page.getByLabel("Customer domain").fill(CUSTOMER_DOMAIN);
  await page.getByLabel("Open signups now").check();
  await page.getByRole("button", { name: "Finish activation" }).click();
  await expect(page).toHaveURL(panelUrl(box, "/admin"));
  await expect(page.getByRole("heading", { level: 1, name: "Overview" })).toBeVisible();
  await expect(page.getByText(/No buddy server/).first()).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Admin" })).toBeVisible();
  const server = await serverSpec(box.stateDir);
  expect(server).toMatchObject({ activated: true, signupsOpen: true, customerDomain: CUSTOMER_DOMAIN });
  await screenshot(page, "admin-overview");
});

test("a customer chooses a plan, signs up and sees the service become ready", async ({ box }) => {
  await signOut(page);
  await page.goto(box.panelUrl);
  const plans = page.locator("section#plans");
  await expect(plans).toBeVisible();
  await screenshot(page, "shop-home");
  await plans.getByRole("link", { name: `Choose ${PLAN}` }).click();
  await expect(page).toHaveURL(/\/signup(\?|$)/);
  await expect(page.getByLabel("Plan").locator("option:checked")).toContainText(PLAN);
  await screenshot(page, "signup");
  await submitSignup(page, ALICE);
  await expect(page).toHaveURL(/\/account\/services\/[^/?#]+$/, { timeout: 30_000 });
  serviceId = decodeURIComponent(new URL(page.url()).pathname.split("/").at(-1) ?? "");
  expect(serviceId).not.toBe("");
  await expect(page.getByRole("heading", { level: 1, name: ALICE.domain })).toBeVisible();
  await screenshot(page, "service-progress");
  // The minion provisions DNS, mail, XMPP, the route and the certificate; the page follows it.
  await expect(page.getByRole("status").filter({ hasText: /^\s*Your service is ready\s*$/ })).toBeVisible({ timeout: 90_000 });
  await screenshot(page, "service-ready");
});

test("the site answers over HTTPS with a certificate from the box's CA", async ({ box }) => {
  let answer = { status: 0, body: "" };
  // The route and certificate are written before "ready"; the proxy reloads them within moments.
  await expect(async () => {
    answer = await fetchSite(box, ALICE.domain);
    expect(answer.status).toBe(200);
  }).toPass({ timeout: 20_000, intervals: [500, 1000, 2000] });
  expect(answer.body).toContain(`Welcome to ${ALICE.domain}`);
});

test("the site shows in a browser", async ({ box }) => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", `--host-resolver-rules=MAP ${ALICE.domain} 127.0.0.1`] });
  try {
    const siteContext = await browser.newContext({ ignoreHTTPSErrors: true });
    watchContext(siteContext);
    const site = await siteContext.newPage();
    await site.goto(`https://${ALICE.domain}:${box.ports.https}/`);
    await expect(site.getByText(`Welcome to ${ALICE.domain}`).first()).toBeVisible();
    await screenshot(site, "customer-site");
  } finally {
    await browser.close();
  }
});

test("the admin sees the service ready, with its traffic", async ({ box }) => {
  await signOut(page);
  await signIn(page, box, ADMIN.email, ADMIN.password);
  await page.goto(panelUrl(box, `/admin/services/${encodeURIComponent(serviceId)}`));
  await expect(page.getByRole("heading", { level: 1, name: serviceId })).toBeVisible();
  await expect(page.getByText("Ready", { exact: true }).first()).toBeVisible();
  await expect(page.getByRole("heading", { level: 2, name: "Traffic" })).toBeVisible();
  // The panel samples the proxy's stats every 5 s: reload until the requests above are counted.
  await expect(async () => {
    await page.reload();
    const line = await page.getByText(/\d+ requests? in the last hour/).first().innerText({ timeout: 5000 });
    const count = Number(/(\d+) requests? in the last hour/.exec(line)?.[1] ?? "0");
    expect(count).toBeGreaterThanOrEqual(1);
  }).toPass({ timeout: 45_000, intervals: [2000, 5000] });
  await screenshot(page, "admin-service");
});
