// What the installer tests read on an installed machine between its lifecycle steps: a fingerprint
// of everything install.sh writes, the components' pids, and newer checkouts made from the one the
// install used (an upgrade, and a release whose panel cannot start).
import { CHECKOUT_IN_MACHINE } from "./harness.ts";
import type { Machine } from "./machine.ts";

/** The systemd units of the components, in a fixed order. */
export const COMPONENT_UNITS = ["coyote-minion.service", "coyote-docker-activator.service", "coyote-snitch-proxy.service", "coyote-crm.service"] as const;

/**
 * What install.sh writes, checksummed: the unit files, the installer's choices, the CLI wrapper,
 * the release links and folders, the specs; and every such file changed since `stamp`.
 */
export async function installFingerprint(machine: Machine, stamp: string): Promise<{ sums: string; changed: string }> {
  const sums = await machine.exec(["bash", "-c", `set -e
cd /
find /etc/systemd/system -name 'coyote*' | sort
find /etc/systemd/system -maxdepth 1 -name 'coyote*' -type f -print0 | sort -z | xargs -0 sha256sum
sha256sum /etc/coyote/install.conf /usr/local/bin/coyote
readlink /opt/coyote/current /opt/coyote/previous || true
ls /opt/coyote/releases
find /var/lib/coyote/specs -type f -print0 | sort -z | xargs -0 sha256sum`]);
  // Files and links only: a lock taken and released leaves its folder's time changed, nothing else.
  const changed = await machine.exec(["bash", "-c", `find /opt/coyote /etc/systemd/system /etc/coyote /usr/local/bin/coyote /var/lib/coyote/specs \\( -type f -o -type l \\) -newer ${stamp} -print | grep -v '/node_modules/' | sort || true`]);
  return { sums, changed };
}

/** Each component's main pid, from systemd, in {@link COMPONENT_UNITS} order. */
export async function componentPids(machine: Machine): Promise<number[]> {
  const out = await machine.exec(["systemctl", "show", "--property=MainPID", "--value", ...COMPONENT_UNITS]);
  // One line per unit, with an empty line between units.
  return out.split("\n").filter((line) => line.trim() !== "").map((line) => Number.parseInt(line, 10));
}

/** The link `/opt/coyote/<name>` points at, or "" when there is none. */
export async function releaseLink(machine: Machine, name: "current" | "previous"): Promise<string> {
  return (await machine.exec(["bash", "-c", `readlink /opt/coyote/${name} || true`])).trim();
}

/** Where the newer checkouts go in the machine. */
export const NEXT_CHECKOUT = `${CHECKOUT_IN_MACHINE}-next`;
export const BROKEN_CHECKOUT = `${CHECKOUT_IN_MACHINE}-broken`;

/** The line of the component launcher that loads the panel, and what the broken release has instead. */
const PANEL_LOADER = `"coyote-crm": async () => (await import("@coyote/coyote-crm")).component,`;
const BROKEN_LOADER = `"coyote-crm": () => Promise.reject(new Error("the panel of this release is broken on purpose")),`;

/**
 * Makes two newer checkouts beside the installed one: one whose README changed (a new release that
 * works), and one made from it whose panel throws as it starts. Fails when the panel's loader line
 * is not where the broken one expects it.
 */
export async function makeNewerCheckouts(machine: Machine): Promise<void> {
  await machine.exec(["bash", "-c", `set -euo pipefail
rm -rf ${NEXT_CHECKOUT} ${BROKEN_CHECKOUT}
cp -a ${CHECKOUT_IN_MACHINE} ${NEXT_CHECKOUT}
printf '\\nA newer release, made by the installer test.\\n' >> ${NEXT_CHECKOUT}/README.md
cp -a ${NEXT_CHECKOUT} ${BROKEN_CHECKOUT}
launcher=${BROKEN_CHECKOUT}/packages/cli/src/component-main.ts
grep -qF '${PANEL_LOADER}' "$launcher"
sed -i 's|${PANEL_LOADER.replace(/[|&\\]/g, "\\$&")}|${BROKEN_LOADER.replace(/[|&\\]/g, "\\$&")}|' "$launcher"
grep -qF 'broken on purpose' "$launcher"`]);
}
