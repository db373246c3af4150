/** Passwords that are refused whatever their length: the most common ones and their near variants. */
const COMMON = new Set([
  "password", "password1", "password12", "password123", "password1234", "passw0rd", "p@ssw0rd", "p@ssword",
  "1234567890", "12345678910", "0123456789", "1111111111", "0000000000", "qwertyuiop", "qwerty1234", "qwerty123456",
  "1q2w3e4r5t", "1qaz2wsx3edc", "asdfghjkl1", "iloveyou12", "letmein123", "welcome123", "admin12345", "administrator",
  "changeme123", "abc1234567", "football12", "baseball12", "sunshine12", "princess12", "dragon1234", "monkey1234",
  "trustno1234", "superman12", "starwars12", "correcthorsebatterystaple",
]);

/** The smallest length accepted. */
export const MIN_PASSWORD_LENGTH = 10;

/**
 * Checks a new password. @returns what is wrong, as a sentence for the form, or undefined when it
 * is good enough: at least 10 characters (at most 200), not a common password, not the e-mail
 * address or its name part, not one repeated character.
 */
export function passwordProblem(password: string, email: string): string | undefined {
  const lower = password.toLowerCase();
  const local = email.toLowerCase().split("@")[0] ?? "";
  if (password.length < MIN_PASSWORD_LENGTH) return `choose a stronger password: at least ${MIN_PASSWORD_LENGTH} characters (this one has ${password.length})`;
  if (password.length > 200) return "choose a shorter password: at most 200 characters";
  if (COMMON.has(lower)) return "choose a stronger password: this one is among the most common passwords";
  if (/^(.)\1+$/.test(password)) return "choose a stronger password: not one character repeated";
  if (local.length >= 3 && lower.includes(local)) return "choose a stronger password: it must not contain your e-mail's name";
  return undefined;
}
