// What a person does in the panel, step by step, written against the panel's UI contract
// (labels and roles, never CSS classes), so that the specs read like the story they test.
import { readdir } from "node:fs/promises";
import { expect, type Page } from "@playwright/test";
import { servicesDir, type ApplianceInfo } from "./appliance.ts";
import { screenshot } from "./fixtures.ts";

/** The admin account the tests create when they activate the box. */
export const ADMIN = { email: "admin@box.test", password: "Juniper-quartz-meadow-71" } as const;

/** The customer domain the activation opens the shop on. */
export const CUSTOMER_DOMAIN = "box.test";

/** A password every customer of the tests uses: long and not a common one. */
export const CUSTOMER_PASSWORD = "Pinecone-river-lantern-42";

/** The plan an activated box offers. */
export const PLAN = "Starter";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The panel's URL of a path. */
export function panelUrl(box: ApplianceInfo, path: string): string {
  return new URL(path, box.panelUrl).toString();
}

/** The page's h1, once there is one. */
async function heading(page: Page): Promise<string> {
  const h1 = page.getByRole("heading", { level: 1 });
  await h1.first().waitFor({ state: "visible" });
  return (await h1.first().innerText()).trim();
}

/** Fills the first wizard step: the token, and the admin account. */
export async function fillActivation(page: Page, token: string): Promise<void> {
  await page.getByLabel("Activation token").fill(token);
  await page.getByLabel("Admin e-mail").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await page.getByLabel("Repeat password").fill(ADMIN.password);
}

/** Signs in through `/login` and waits until the sign-in form is gone. */
export async function signIn(page: Page, box: ApplianceInfo, email: string, password: string): Promise<void> {
  await page.goto(panelUrl(box, "/login"));
  await expect(page.getByRole("heading", { level: 1, name: "Sign in" })).toBeVisible();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await screenshot(page, "sign-in");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).not.toHaveURL(/\/login(\?|$)/);
}

/** Signs out with the top bar's button. */
export async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
}

/**
 * Brings the box to "activated, signups open", whatever step it is at: a fresh box is activated
 * through the wizard; a box whose wizard was left half-way is finished; an activated box only
 * needs the admin signed in. Leaves the admin signed in on `/admin`. The walk is bounded.
 */
export async function ensureActivated(page: Page, box: ApplianceInfo): Promise<void> {
  // The start page, not /admin: an admin page answered 401 would be a console error in the browser.
  await page.goto(panelUrl(box, "/"));
  for (let step = 0; step < 10; step++) {
    const h1 = await heading(page);
    if (h1 === "Overview") return;
    const before = page.url();
    await screenshot(page, `ensure-activated-${h1}`);
    switch (h1) {
      case "Activate this box":
        if ((await page.getByLabel("Activation token").count()) === 0) {
          // The admin account exists but its session is gone (another browser made it): sign in, go on.
          await signIn(page, box, ADMIN.email, ADMIN.password);
          await page.goto(panelUrl(box, "/activate"));
          continue;
        }
        await fillActivation(page, box.activationToken);
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
        // The shop's start page or the sign-in page: the box is activated, the admin signs in.
        if (h1 !== "Sign in" && new URL(page.url()).pathname !== "/") throw new Error(`activating the box: unexpected page "${h1}" at ${page.url()}`);
        await signIn(page, box, ADMIN.email, ADMIN.password);
        await page.goto(panelUrl(box, "/admin"));
        continue;
    }
    await expect(page).not.toHaveURL(before);
  }
  throw new Error(`activating the box: still not on the admin overview after 10 steps (at ${page.url()})`);
}

/** What a signup form gets. */
export interface Signup {
  readonly email: string;
  readonly password: string;
  readonly domain: string;
  readonly plan?: string;
}

/** Fills `/signup` (already open) and presses "Sign up". */
export async function submitSignup(page: Page, signup: Signup): Promise<void> {
  await expect(page.getByRole("heading", { level: 1, name: "Sign up" })).toBeVisible();
  await page.getByLabel("E-mail").fill(signup.email);
  await page.getByLabel("Password", { exact: true }).fill(signup.password);
  await page.getByLabel("Repeat password").fill(signup.password);
  await page.getByLabel("Domain").fill(signup.domain);
  // An option reads "Starter (€5/month)": pick it by the plan's name at the start of its text.
  const plan = page.getByLabel("Plan");
  const option = plan.locator("option").filter({ hasText: new RegExp(`^\\s*${escapeRegExp(signup.plan ?? PLAN)}\\b`) }).first();
  const value = await option.getAttribute("value");
  if (value === null) throw new Error(`signing up: the plan select has no option "${signup.plan ?? PLAN}"`);
  await plan.selectOption(value);
  await page.getByRole("button", { name: "Sign up" }).click();
}

/**
 * Signs a new customer up through the shop's form and waits for the service's progress page.
 * @returns the new service's id (from `/account/services/<id>`).
 */
export async function signUp(page: Page, box: ApplianceInfo, signup: Signup): Promise<string> {
  await page.goto(panelUrl(box, "/signup"));
  await submitSignup(page, signup);
  await expect(page).toHaveURL(/\/account\/services\/[^/?#]+$/, { timeout: 30_000 });
  await screenshot(page, `signup-done-${signup.domain}`);
  const id = new URL(page.url()).pathname.split("/").at(-1);
  if (id === undefined || id === "") throw new Error(`signing up ${signup.domain}: no service id in ${page.url()}`);
  return decodeURIComponent(id);
}

/** The service spec files in the state folder (a signup adds one). */
export async function serviceFiles(box: ApplianceInfo): Promise<string[]> {
  return (await readdir(servicesDir(box)).catch(() => [] as string[])).filter((f) => f.endsWith(".json")).sort();
}

/** A name no earlier run of the same box used: a time stamp in base 36 and a random tail. */
export function unique(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
}
