// The mail a customer is promised, end to end: they sign up in the browser, add a mailbox in their
// account pages, read the mail settings the page shows, and a real mail client uses exactly those
// (server name, ports, security, the full address as user name) to send over submission with a
// login and read the message back over IMAP, trusting only the box's CA. A wrong password and a
// message without a login are refused. It brings the box to the state it needs, so it runs alone too.
import type { Page } from "@playwright/test";
import { expect, screenshot, test, watchContext } from "../support/fixtures.ts";
import { CUSTOMER_DOMAIN, CUSTOMER_PASSWORD, ensureActivated, signOut, signUp, unique, panelUrl } from "../support/flows.ts";
import { endpoint, fetchBySubject, imapRefuses, readMailSettings, submissionRefusal, submit, type ShownMailSettings } from "../support/mail.ts";

const MAILBOX_PASSWORD = "Copper-meadow-falcon-27";

test.describe.configure({ mode: "serial" });

let page: Page;
let domain = "";
let owner = "";
let sales = "";
let settings: ShownMailSettings | undefined;

/** The settings read in the first test; the later ones need them. */
function shown(): ShownMailSettings {
  if (settings === undefined) throw new Error("the mail settings were not read: the first test of this file failed");
  return settings;
}

/** Whether a message's header carries a DKIM signature of `signer` (its `d=` tag, possibly on a folded line). */
function signedBy(source: string, signer: string): boolean {
  const header = source.split(/\r?\n\r?\n/)[0] ?? "";
  const signature = /^DKIM-Signature:[^\n]*(?:\r?\n[ \t][^\n]*)*/im.exec(header)?.[0] ?? "";
  return new RegExp(`(^|[;\\s])d=${signer.replace(/\./g, "\\.")}\\s*(;|$)`, "i").test(signature.replace(/\r?\n[ \t]+/g, " "));
}

test.beforeAll(async ({ browser }) => {
  const context = await browser.newContext();
  watchContext(context);
  page = await context.newPage();
});

test("a customer signs up, adds a mailbox and reads the mail settings once the service is ready", async ({ box }) => {
  await ensureActivated(page, box);
  await signOut(page);
  const name = unique("mail");
  domain = `${name}.${CUSTOMER_DOMAIN}`;
  owner = `${name}@${domain}`;
  sales = `sales@${domain}`;
  const serviceId = await signUp(page, box, { email: `${name}@example.org`, password: CUSTOMER_PASSWORD, domain });

  await page.getByLabel("New mailbox").fill("sales");
  await page.getByLabel("Mailbox password", { exact: true }).fill(MAILBOX_PASSWORD);
  await page.getByLabel("Repeat mailbox password").fill(MAILBOX_PASSWORD);
  await page.getByRole("button", { name: "Add mailbox" }).click();
  await expect(page.getByRole("status").filter({ hasText: `Added the mailbox ${sales}.` })).toBeVisible();
  await expect(page.getByRole("table", { name: "Mailboxes" })).toContainText(sales);

  // A page rendered after the mailbox was added is ready only once the minion applied that spec,
  // and Ready means the daemons serve it: from here on every login must work the first time.
  await page.goto(panelUrl(box, `/account/services/${encodeURIComponent(serviceId)}`));
  await expect(page.getByRole("status").filter({ hasText: /^\s*Your service is ready\s*$/ })).toBeVisible({ timeout: 90_000 });
  settings = await readMailSettings(page.getByLabel("Mail app settings"));
  await screenshot(page, "mail-settings");
  expect(settings.address).toBe(owner);
  expect(settings.userName).toContain("full address");
});

test("a mail client with exactly those settings sends over submission with a login and reads it back over IMAP with TLS", async ({ box }) => {
  const { smtp, imap } = shown();
  // The added mailbox writes to the signup's one through the STARTTLS port; the owner reads it over IMAP's SSL/TLS port.
  const first = { from: sales, to: owner, subject: `hello ${unique("m")}`, text: "Hello,\r\nthis went through the box's own mail server.\r\n" };
  expect(await submit(box, smtp, endpoint(smtp, "STARTTLS"), { user: sales, pass: MAILBOX_PASSWORD }, first)).toEqual([owner]);
  const read = await fetchBySubject(box, imap, endpoint(imap, "SSL/TLS"), { user: owner, pass: CUSTOMER_PASSWORD }, first.subject);
  expect(read).toContain("this went through the box's own mail server.");
  expect(signedBy(read, domain), `a DKIM signature of ${domain} in:\n${read.slice(0, 3000)}`).toBe(true);

  // And back: the SSL/TLS submission port, read over IMAP's STARTTLS port with the mailbox's own password.
  const reply = { from: owner, to: sales, subject: `re: ${first.subject}`, text: "Got it.\r\n" };
  expect(await submit(box, smtp, endpoint(smtp, "SSL/TLS"), { user: owner, pass: CUSTOMER_PASSWORD }, reply)).toEqual([sales]);
  expect(await fetchBySubject(box, imap, endpoint(imap, "STARTTLS"), { user: sales, pass: MAILBOX_PASSWORD }, reply.subject)).toContain("Got it.");
});

test("a wrong password is refused by submission and IMAP, and so is a message sent without a login", async ({ box }) => {
  const { smtp, imap } = shown();
  const message = { from: sales, to: owner, subject: "refused", text: "x\r\n" };
  expect(await submissionRefusal(box, smtp, endpoint(smtp, "STARTTLS"), undefined, message), "submission without a login").toBeGreaterThanOrEqual(500);
  // One wrong password each: Dovecot, which checks the logins of both, delays every further try
  // from an address that just failed (2 s, 4 s, 8 s…), and Postfix waits 10 s for its answer, so a
  // third failure in a row from one address is answered 454 (try later) instead of 535.
  expect(await submissionRefusal(box, smtp, endpoint(smtp, "STARTTLS"), { user: sales, pass: CUSTOMER_PASSWORD }, message), "submission, another mailbox's password").toBe(535);
  expect(await imapRefuses(box, imap, endpoint(imap, "SSL/TLS"), { user: sales, pass: "Not-the-password-99" }), "IMAP, a wrong password").toBe(true);
});
