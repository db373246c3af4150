// A customer's own account pages on a running box: the mail and chat apps' settings, mailboxes and
// aliases added and removed within the plan, a bad name refused in place, the password changed
// for the panel (and through the spec for mail and XMPP), and the autoconfig file mail apps fetch.
// It brings the box to the state it needs, so it runs after the story or alone.
import { readFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import type { Page } from "@playwright/test";
import { expect, screenshot, test, watchContext } from "../support/fixtures.ts";
import { CUSTOMER_DOMAIN, CUSTOMER_PASSWORD, ensureActivated, signIn, signOut, signUp, unique, panelUrl } from "../support/flows.ts";
import { BOX_HOSTNAME, type ApplianceInfo } from "../support/appliance.ts";

const NEW_PASSWORD = "Saffron-glacier-wren-64";
const MAILBOX_PASSWORD = "Copper-meadow-falcon-27";

test.describe.configure({ mode: "serial" });

let page: Page;
let customer = { email: "", domain: "", serviceId: "" };

/** The autoconfig file as snitch-proxy would forward it: the panel's listener, with the mail domain's Host. */
function autoconfig(box: ApplianceInfo, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: box.ports.panel, path, headers: { host }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("timeout", () => req.destroy(new Error(`autoconfig of ${host}: no answer within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}

async function spec(box: ApplianceInfo): Promise<{ generation: number; mail?: { mailboxes: { address: string; credential?: string }[]; aliases: { address: string; to: string[] }[] }; xmpp?: { users: { credential?: string }[] } }> {
  return JSON.parse(await readFile(join(box.stateDir, "specs", "services", `${customer.serviceId}.json`), "utf8")) as Awaited<ReturnType<typeof spec>>;
}

test.beforeAll(async ({ browser }) => {
  const context = await browser.newContext();
  watchContext(context);
  page = await context.newPage();
});

test("a new customer's service page shows the apps' settings from the server spec", async ({ box }) => {
  await ensureActivated(page, box);
  await signOut(page);
  const name = unique("acct");
  customer = { email: `${name}@example.org`, domain: `${name}.${CUSTOMER_DOMAIN}`, serviceId: "" };
  customer.serviceId = await signUp(page, box, { email: customer.email, password: CUSTOMER_PASSWORD, domain: customer.domain });
  const mail = page.getByLabel("Mail app settings");
  await expect(mail).toContainText(`${BOX_HOSTNAME}, port ${box.ports.imaps} (SSL/TLS) or ${box.ports.imap} (STARTTLS)`);
  await expect(mail).toContainText(`${BOX_HOSTNAME}, port ${box.ports.submissions} (SSL/TLS) or ${box.ports.submission} (STARTTLS)`);
  await expect(page.getByLabel("Chat app settings")).toContainText(`${BOX_HOSTNAME}, port ${box.ports.xmppClient} (STARTTLS)`);
  await expect(page.getByText("1 of 5 mailboxes, 0 of 10 aliases in your plan.")).toBeVisible();
  await screenshot(page, "account-settings");
});

test("a bad mailbox name is refused in place; a good one and an alias are added, its password set, then both removed", async ({ box }) => {
  await page.getByLabel("New mailbox").fill("sales team");
  await page.getByLabel("Mailbox password", { exact: true }).fill(MAILBOX_PASSWORD);
  await page.getByLabel("Repeat mailbox password").fill(MAILBOX_PASSWORD);
  await page.getByRole("button", { name: "Add mailbox" }).click();
  await expect(page.getByLabel("New mailbox")).toHaveAccessibleDescription(/not a space/);
  await expect(page.getByLabel("New mailbox")).toHaveValue("sales team");
  await screenshot(page, "account-mailbox-refused");

  await page.getByLabel("New mailbox").fill("sales");
  await page.getByLabel("Mailbox password", { exact: true }).fill(MAILBOX_PASSWORD);
  await page.getByLabel("Repeat mailbox password").fill(MAILBOX_PASSWORD);
  await page.getByRole("button", { name: "Add mailbox" }).click();
  const sales = `sales@${customer.domain}`;
  await expect(page.getByRole("status").filter({ hasText: `Added the mailbox ${sales}.` })).toBeVisible();
  await expect(page.getByRole("table", { name: "Mailboxes" })).toContainText(sales);

  await page.getByLabel("New alias").fill("postmaster");
  await page.getByLabel("Forwards to").selectOption(sales);
  await page.getByRole("button", { name: "Add alias" }).click();
  await expect(page.getByRole("table", { name: "Aliases" })).toContainText(`postmaster@${customer.domain}`);
  await screenshot(page, "account-mailbox-alias");
  const withBoth = await spec(box);
  expect(withBoth.mail?.mailboxes.map((b) => b.address)).toEqual([`${customer.email.split("@")[0] ?? ""}@${customer.domain}`, sales]);
  expect(withBoth.mail?.aliases).toEqual([{ address: `postmaster@${customer.domain}`, to: [sales] }]);

  const salesBefore = (await spec(box)).mail?.mailboxes[1]?.credential;
  await page.getByLabel("Mailbox", { exact: true }).selectOption(sales);
  await page.getByLabel("Its new password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat its new password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Set password" }).click();
  await expect(page.getByRole("status").filter({ hasText: `The mailbox ${sales} has its new password.` })).toBeVisible();
  expect((await spec(box)).mail?.mailboxes[1]?.credential).not.toBe(salesBefore);

  await page.getByRole("button", { name: `Remove postmaster@${customer.domain}` }).click();
  await expect(page.getByRole("table", { name: "Aliases" })).toHaveCount(0);
  await page.getByRole("button", { name: `Remove ${sales}` }).click();
  await expect(page.getByRole("table", { name: "Mailboxes" })).not.toContainText(sales);
  expect((await spec(box)).mail?.mailboxes).toHaveLength(1);
});

test("mail apps find the settings of the customer's domain (autoconfig)", async ({ box }) => {
  const answer = await autoconfig(box, `autoconfig.${customer.domain}`, "/mail/config-v1.1.xml");
  expect(answer.status).toBe(200);
  expect(answer.body).toContain(`<emailProvider id="${customer.domain}">`);
  expect(answer.body).toMatch(new RegExp(`<hostname>${BOX_HOSTNAME.replace(/\./g, "\\.")}</hostname>\\s*<port>${box.ports.imaps}</port>\\s*<socketType>SSL</socketType>`));
  expect((await autoconfig(box, `autoconfig.not-here-${customer.domain}`, "/mail/config-v1.1.xml")).status).toBe(404);
});

test("a password change moves the panel, mail and chat to the new password", async ({ box }) => {
  const before = await spec(box);
  await page.goto(panelUrl(box, "/account"));
  await page.getByRole("link", { name: "Change your password" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Change password" })).toBeVisible();
  await page.getByLabel("Current password").fill("not-the-password-7");
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat new password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByLabel("Current password")).toHaveAccessibleDescription(/not your current password/);

  await page.getByLabel("Current password").fill(CUSTOMER_PASSWORD);
  await page.getByLabel("New password", { exact: true }).fill(NEW_PASSWORD);
  await page.getByLabel("Repeat new password").fill(NEW_PASSWORD);
  await page.getByRole("button", { name: "Change password" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Your password is changed." })).toBeVisible();
  await screenshot(page, "account-password-changed");
  const after = await spec(box);
  expect(after.generation).toBe(before.generation + 1);
  expect(after.mail?.mailboxes[0]?.credential).not.toBe(before.mail?.mailboxes[0]?.credential);
  expect(after.xmpp?.users[0]?.credential).not.toBe(before.xmpp?.users[0]?.credential);

  await signOut(page);
  await page.goto(panelUrl(box, "/login"));
  await page.getByLabel("E-mail").fill(customer.email);
  await page.getByLabel("Password", { exact: true }).fill(CUSTOMER_PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "wrong e-mail address or password" })).toBeVisible();
  await signIn(page, box, customer.email, NEW_PASSWORD);
  await expect(page.getByRole("heading", { level: 1, name: "My services" })).toBeVisible();
});
