// The strength rules of a new password (the admin's, and a customer's, which becomes their mail and
// XMPP password too): both face the internet and its password-guessing bots, so the rules are
// stricter than "not empty".

/** The shortest password accepted. */
export const MIN_PASSWORD_LENGTH = 10;

/** The longest: generous for passphrases, small enough that hashing it costs nothing special. */
export const MAX_PASSWORD_LENGTH = 200;

/**
 * Passwords that lead every leaked-password list (compared case-insensitively). Most are 10 or more
 * characters on purpose: the shorter classics already fail the length rule, and these are what
 * people type when a form asks for ten.
 */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  "1234567890",
  "0123456789",
  "0987654321",
  "12345678910",
  "123456789a",
  "1234567890a",
  "123123123123",
  "1111111111",
  "0000000000",
  "1q2w3e4r5t",
  "1q2w3e4r5t6y",
  "q1w2e3r4t5",
  "q1w2e3r4t5y6",
  "1qaz2wsx3edc",
  "zaq12wsxcde3",
  "qwertyuiop",
  "qwertyuiop123",
  "qwerty1234",
  "qwerty123456",
  "asdfghjkl1",
  "asdfghjkl123",
  "abcdefghij",
  "abcd123456",
  "abc1234567",
  "password12",
  "password123",
  "password1234",
  "password12345",
  "password!1",
  "passw0rd123",
  "p@ssw0rd123",
  "iloveyou123",
  "letmein123",
  "welcome123",
  "welcome1234",
  "changeme123",
  "administrator",
  "football123",
  "baseball123",
  "princess123",
  "sunshine123",
  "superman123",
  "starwars123",
  "trustno1234",
  "monkey12345",
  "dragon12345",
  "master12345",
  "computer123",
  "whatever123",
  "michael123",
]);

/**
 * Why a password is too weak for a signup, or undefined when it is fine.
 * @param password the password as typed.
 * @param email the e-mail address the customer signs up with (its local part must not be in the password).
 * @returns a message for the password field, saying what is wrong.
 */
export function passwordProblem(password: string, email: string): string | undefined {
  if (password === "") return "enter a password";
  if (password.length < MIN_PASSWORD_LENGTH) return `choose a stronger password: use at least ${MIN_PASSWORD_LENGTH} characters (this one has ${password.length})`;
  if (password.length > MAX_PASSWORD_LENGTH) return `choose a shorter password: at most ${MAX_PASSWORD_LENGTH} characters`;
  const lower = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lower)) return "choose a stronger password: this one is among the most common passwords, which attackers try first";
  if (/^(.)\1*$/.test(password)) return "choose a stronger password: it repeats a single character";
  const at = email.lastIndexOf("@");
  const local = (at > 0 ? email.slice(0, at) : "").toLowerCase();
  // A one- or two-letter local part would forbid most passwords without making any of them safer.
  if (local.length >= 3 && lower.includes(local)) return `choose a stronger password: it must not contain the name of your e-mail address (${local})`;
  return undefined;
}
