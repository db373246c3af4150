/**
 * What this process may do that an ordinary user may not: its effective capabilities, read from
 * `/proc/self/status`. Root holds them all unless its sandbox bounds them; a production box's
 * components run as the appliance's user holding only the ones their systemd unit gives them
 * (docs/PRODUCTION.md, "Users"), so code asks for the capability it needs, never for uid 0.
 */
import { readFileSync } from "node:fs";

/** The capabilities Coyote's components use, by name, with their bit numbers (linux/capability.h). */
export const CAPABILITY_BITS = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_ADMIN: 12,
  CAP_SYS_ADMIN: 21,
} as const;

/** A capability's name. */
export type Capability = keyof typeof CAPABILITY_BITS;

/**
 * The effective capabilities in a `/proc/<pid>/status` text (its `CapEff:` line, hexadecimal).
 * @returns the names of the known capabilities that are set; empty when the line is missing.
 */
export function effectiveCapabilities(statusText: string): Set<Capability> {
  const hex = /^CapEff:\s*([0-9a-fA-F]{1,16})\s*$/m.exec(statusText)?.[1];
  const held = new Set<Capability>();
  if (hex === undefined) return held;
  const bits = BigInt(`0x${hex}`);
  for (const [name, bit] of Object.entries(CAPABILITY_BITS) as [Capability, number][]) {
    if ((bits >> BigInt(bit)) & 1n) held.add(name);
  }
  return held;
}

/** Whether this process holds every one of `capabilities` (read once per call). */
export function holdsCapabilities(...capabilities: Capability[]): boolean {
  let status: string;
  try {
    status = readFileSync("/proc/self/status", "utf8");
  } catch {
    // No /proc: only root can be assumed to hold them.
    return process.getuid?.() === 0;
  }
  const held = effectiveCapabilities(status);
  return capabilities.every((c) => held.has(c));
}

/**
 * Whether a program that insists on uid 0 (Postfix's `postfix` command) must be started with its
 * user switched to root: this process is not root but holds CAP_SETUID and CAP_SETGID.
 */
export function switchesToRoot(): boolean {
  return process.getuid?.() !== 0 && holdsCapabilities("CAP_SETUID", "CAP_SETGID");
}
