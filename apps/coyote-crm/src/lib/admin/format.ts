// Formatting shared by the admin's server pages and its live client components. Everything is
// deterministic (UTC, no locale), so a server render and the browser's hydration print the same.

const UNITS = ["B", "kB", "MB", "GB", "TB"] as const;

/** A byte count for people: `512 B`, `1.5 kB`, `23 MB` (powers of 1000, like `df -H`). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "? B";
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  // toFixed may round 999.6 kB up to "1000 kB"; that is still correct, only less tidy.
  return `${Number(value.toFixed(digits)).toString()} ${UNITS[unit] ?? "B"}`;
}

/** An ISO time as `2026-11-23 01:50:07 UTC`; anything unparsable comes back unchanged. */
export function formatTime(iso: string | number): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** A duration in whole seconds as `42 s`, `5 min`, `3 h`, `2 d` (rounded down). */
export function formatAgo(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

/** The short form of a commit id that the history shows (git's default of 7 digits). */
export function shortRevision(revision: string): string {
  return revision.slice(0, 7);
}

/** A count with its noun: `1 buddy`, `2 buddies` (the plural given, or the noun with an s). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
