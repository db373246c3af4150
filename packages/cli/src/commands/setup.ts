import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";
import type { Command } from "commander";
import { DomainName, ServerSpec, StateStore, specPath, validate } from "@coyote/spec";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import type { Io } from "../io.ts";
import { installServerSpec } from "../install/server-spec.ts";
import { boxDaemons, installedUnits, writeUnits } from "../install/units.ts";
import { activationToken } from "./activation.ts";

interface SetupOptions {
  hostname?: string;
  defaultHostname?: string;
  ipv4?: string;
  ipv6?: string;
  email?: string;
  mail: boolean;
  xmpp: boolean;
  unitsDir: string;
  current: string;
  node: string;
  units: boolean;
  unitsOnly?: boolean;
}

/** The server spec as it is on disk, read without opening the store (which may write). */
async function readServerSpec(stateDir: string): Promise<ServerSpec> {
  const file = join(stateDir, specPath("server"));
  const text = await readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) throw new CliError(`setup: no server spec in ${file}: run coyote setup without --units-only first`, EXIT.MISSING);
  return validate(ServerSpec, JSON.parse(text), file);
}

function checkedAddress(flag: string, value: string | undefined, family: 4 | 6): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (isIP(value) !== family) throw new CliError(`setup: ${flag} ${JSON.stringify(value)} is not an IPv${String(family)} address`, EXIT.USAGE);
  return value;
}

function checkedHostname(flag: string, value: string): string {
  const parsed = DomainName.safeParse(value.toLowerCase().replace(/\.$/, ""));
  if (!parsed.success || !parsed.data.includes(".")) throw new CliError(`setup: ${flag} ${JSON.stringify(value)} is not a fully qualified host name (like box.example.org)`, EXIT.USAGE);
  return parsed.data;
}

/**
 * Adds `coyote setup`: what `install.sh` does once the release is built, as root: the server
 * spec from what it detected and was told, the activation token, and the systemd units.
 */
export function setupCommand(program: Command, env: CliEnv, io: Io): void {
  program
    .command("setup")
    .description("write the server spec and the systemd units of a production box (run by install.sh, as root)")
    .option("--hostname <name>", "the box's hostname (replaces the one in an existing server spec)")
    .option("--default-hostname <name>", "the hostname a first install uses when --hostname is not given")
    .option("--ipv4 <address>", "the box's public IPv4 address")
    .option("--ipv6 <address>", "the box's public IPv6 address")
    .option("--email <address>", "certificates from Let's Encrypt, which writes to this address (else from the box's own CA)")
    .option("--no-mail", "leave Postfix, Dovecot and OpenDKIM out")
    .option("--no-xmpp", "leave Prosody out")
    .option("--units-dir <dir>", "where the systemd units are written", "/etc/systemd/system")
    .option("--current <dir>", "the running release the units start from", "/opt/coyote/current")
    .option("--node <path>", "the Node.js binary the units run", process.execPath)
    .option("--no-units", "write the server spec and the token only (run as the state folder's owner)")
    .option("--units-only", "write the units only, from the server spec on disk (run as root)")
    .action(async (options: SetupOptions) => {
      if (options.unitsOnly === true) {
        await writeBoxUnits(env, io, await readServerSpec(env.stateDir), options);
        return;
      }
      const explicit = options.hostname === undefined ? undefined : checkedHostname("--hostname", options.hostname);
      const store = await StateStore.open(env.stateDir, { author: { name: "install.sh", email: "root@localhost" } });
      const existing = await store.readJson(specPath("server"), ServerSpec);
      const fallback = explicit ?? existing?.hostname ?? (options.defaultHostname === undefined ? undefined : checkedHostname("--default-hostname", options.defaultHostname));
      if (fallback === undefined) throw new CliError("setup: no hostname: give --hostname box.example.org", EXIT.USAGE);
      const ipv4 = checkedAddress("--ipv4", options.ipv4, 4);
      const ipv6 = checkedAddress("--ipv6", options.ipv6, 6);
      const next = installServerSpec(existing, {
        hostname: fallback,
        hostnameGiven: explicit !== undefined,
        ...(ipv4 === undefined ? {} : { publicIPv4: ipv4 }),
        ...(ipv6 === undefined ? {} : { publicIPv6: ipv6 }),
        ...(options.email === undefined ? {} : { email: options.email }),
      });
      if (next !== undefined) await store.applySpec(next, { author: { name: "install.sh", email: "root@localhost" }, message: existing === undefined ? "install: the box's server spec" : "install: the server spec follows the installer's flags" });
      io.out(`server spec: ${next === undefined ? "unchanged" : existing === undefined ? "written" : "updated"}`);
      const server = await store.readJson(specPath("server"), ServerSpec);
      if (server === undefined) throw new CliError("setup: the server spec could not be read back after writing it");
      await activationToken(store);
      if (options.units) await writeBoxUnits(env, io, server, options);
    });
}

/** Renders and writes the box's units, and says what changed. */
async function writeBoxUnits(env: CliEnv, io: Io, server: ServerSpec, options: SetupOptions): Promise<void> {
  const choices = { mail: options.mail, xmpp: options.xmpp };
  const daemons = boxDaemons(server, choices);
  const units = installedUnits(server, { ...choices, stateDir: env.stateDir, current: options.current, node: options.node });
  const result = await writeUnits(options.unitsDir, units);
  io.out(`units: ${String(result.written.length)} written, ${String(result.unchanged.length)} unchanged, ${String(result.removed.length)} removed (${options.unitsDir})`);
  for (const name of result.written) io.out(`  written: ${name}`);
  for (const name of result.removed) io.out(`  removed: ${name}`);
  io.out(`daemons: ${daemons.map((d) => d.name).join(", ") || "none"}`);
}
