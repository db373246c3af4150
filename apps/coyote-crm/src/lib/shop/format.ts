// Numbers for people, shared by the server pages and the polling client components (so it
// imports nothing from Node).

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** A byte count like "0 B", "512 B", "1.5 MiB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit] ?? "B"}`;
}

/** A count with thousands separators, like "12,345". */
export function formatCount(count: number): string {
  return count.toLocaleString("en-US");
}
