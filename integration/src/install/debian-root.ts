// A fresh Debian 12 root for the installer tests, made with debootstrap from Debian's archive and
// cached as a tarball outside the checkout, keyed by everything that goes into it.
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { requireProgram } from "@coyote/testing";
import { cacheDir } from "./env.ts";
import { withLock } from "./lock.ts";

const run = promisify(execFile);

/** Debian's archive: the only source of the root's packages (and of the box's, through apt). */
export const DEBIAN_MIRROR = "http://deb.debian.org/debian";

/**
 * What a typical Debian 12 cloud VM has beside the `minbase` variant (the essential and `required`
 * packages: bash, coreutils, apt, dpkg, util-linux, ...), and nothing the installer must bring
 * itself:
 * - `systemd`, `systemd-sysv`: the init a VM boots (`/sbin/init`), which the box's units run under;
 * - `dbus`: what `systemctl`, `hostnamectl` and logind talk over on a booted VM;
 * - `ca-certificates`, `curl`, `wget`: every cloud image has them; an installer fetched with
 *   `curl ... | bash` needs one of them and verifies HTTPS with the CA bundle;
 * - `iproute2`: `ip`, how a VM's addresses are read (and what docker-activator uses);
 * - `procps`, `sudo`, `gnupg`: `ps`/`kill`, the admin's way to root, and apt key handling, there on
 *   every cloud image.
 * Left out on purpose: Node.js and npm (the installer brings Node itself), git, python3 (cloud-init
 * is not run here, and the box must not depend on it), openssh-server, and every daemon the box
 * installs (Postfix, Dovecot, Knot, Prosody, OpenDKIM, Docker).
 */
export const ROOT_PACKAGES = ["systemd", "systemd-sysv", "dbus", "ca-certificates", "curl", "wget", "iproute2", "procps", "sudo", "gnupg"] as const;

/** The Debian release of the root. */
export const SUITE = "bookworm";

/** The apt sources of a Debian 12 cloud image: the release, its updates and its security updates. */
const SOURCES = `Types: deb
URIs: http://deb.debian.org/debian
Suites: ${SUITE} ${SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: ${SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

/**
 * What is done to the root after debootstrap, as one shell script run in it with chroot; part of
 * the cache key, so changing it makes a new root. The gettys are masked: a container has no
 * terminal for them, and systemd would restart them forever.
 */
const CUSTOMIZE = `set -eu
rm -f /etc/apt/sources.list
systemctl mask getty.target console-getty.service getty@tty1.service serial-getty@ttyS0.service
echo debian > /etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log /etc/machine-id /var/lib/dbus/machine-id
: > /etc/machine-id
`;

/** A cached Debian root and how it was had. */
export interface DebianRoot {
  /** The tarball of the root (uncompressed tar, the format `docker import` reads fastest). */
  readonly tarball: string;
  /** The cache key: a hash of the suite, the mirror, the package list and the customization. */
  readonly key: string;
  /** Whether this call built it (false: it was in the cache). */
  readonly built: boolean;
  /** How long this call took, in milliseconds. */
  readonly ms: number;
}

/** The key of a root: changing the suite, the packages or what is done to them makes a new root. */
export function rootKey(packages: readonly string[] = ROOT_PACKAGES): string {
  const text = JSON.stringify({ suite: SUITE, mirror: DEBIAN_MIRROR, variant: "minbase", packages: [...packages].sort(), sources: SOURCES, customize: CUSTOMIZE });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Runs a program with a deadline, keeping its output for the error. */
async function step(what: string, program: string, args: readonly string[], timeoutMs: number): Promise<void> {
  try {
    await run(program, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, killSignal: "SIGKILL" });
  } catch (error) {
    const { stderr = "", stdout = "" } = error as { stderr?: string; stdout?: string };
    const tail = `${stdout}\n${stderr}`.trim().split("\n").slice(-25).join("\n");
    throw new Error(`${what}: ${(error as Error).message.split("\n")[0] ?? ""}\n${tail}`, { cause: error });
  }
}

/** Builds the root into `tarball` through a temp folder in the same cache folder, renamed at the end. */
async function build(dir: string, tarball: string, packages: readonly string[]): Promise<void> {
  const work = await mkdtemp(join(dir, "build-"));
  try {
    const root = join(work, "root");
    await step("debootstrap of a Debian root", requireProgram("debootstrap"), ["--variant=minbase", `--include=${packages.join(",")}`, SUITE, root, DEBIAN_MIRROR], 30 * 60_000);
    await writeFile(join(root, "etc", "apt", "sources.list.d", "debian.sources"), SOURCES);
    await step("customizing the Debian root", "chroot", [root, "/bin/sh", "-c", CUSTOMIZE], 120_000);
    const partial = join(work, "root.tar");
    await step("packing the Debian root", "tar", ["--numeric-owner", "--xattrs", "--acls", "-C", root, "-cf", partial, "."], 10 * 60_000);
    await rename(partial, tarball);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Removes what earlier runs left: roots of other keys and build folders of runs that died. */
async function prune(dir: string, keep: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name === keep || name === "root.lock") continue;
    if (/^debian-12-[0-9a-f]{16}\.tar$/.test(name) || name.startsWith("build-")) await rm(join(dir, name), { recursive: true, force: true });
  }
}

/**
 * A Debian 12 (bookworm) root with {@link ROOT_PACKAGES}, from the cache when it holds one for
 * this key, else made with debootstrap from {@link DEBIAN_MIRROR} (several minutes). Runs at the
 * same time wait for each other's build through a lock; a root is only ever seen whole (it is
 * written under a temp name and renamed), so even a lock taken over from a dead run cannot hand
 * out half a root.
 * @param options.cache the cache folder (default: {@link cacheDir}).
 * @throws Error with debootstrap's output when the build fails.
 */
export async function debianRoot(options: { readonly cache?: string; readonly packages?: readonly string[]; readonly onBuild?: () => void } = {}): Promise<DebianRoot> {
  const started = performance.now();
  const dir = options.cache ?? cacheDir();
  const packages = options.packages ?? ROOT_PACKAGES;
  for (const name of packages) {
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(name)) throw new Error(`debian root: ${JSON.stringify(name)} is not a Debian package name`);
  }
  const key = rootKey(packages);
  const tarball = join(dir, `debian-12-${key}.tar`);
  if (await exists(tarball)) return { tarball, key, built: false, ms: performance.now() - started };
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return withLock(join(dir, "root.lock"), { timeoutMs: 40 * 60_000 }, async () => {
    // Another run may have built it while this one waited for the lock.
    if (await exists(tarball)) return { tarball, key, built: false, ms: performance.now() - started };
    options.onBuild?.();
    await prune(dir, `debian-12-${key}.tar`);
    await build(dir, tarball, packages);
    return { tarball, key, built: true, ms: performance.now() - started };
  });
}
