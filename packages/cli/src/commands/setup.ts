import { isIP } from "node:net";
import type { Command } from "commander";
import { DomainName, ServerSpec, StateStore, specPath } from "@coyote/spec";
import type { CliEnv } from "../env.ts";
import { CliError, EXIT } from "../errors.ts";
import type { Io } from "../io.ts";
import { installServerSpec } from "../install/server-spec.ts";
import { boxDaemons, installedUnits, writeUnits } from "../install/units.ts";
import { activationToken } from "./up.ts";

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
    .action(async (options: SetupOptions) => {
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
      const choices = { mail: options.mail, xmpp: options.xmpp };
      const daemons = boxDaemons(server, choices);
      const units = installedUnits(server, { ...choices, stateDir: env.stateDir, current: options.current, node: options.node });
      const result = await writeUnits(options.unitsDir, units);
      io.out(`units: ${String(result.written.length)} written, ${String(result.unchanged.length)} unchanged, ${String(result.removed.length)} removed (${options.unitsDir})`);
      for (const name of result.written) io.out(`  written: ${name}`);
      for (const name of result.removed) io.out(`  removed: ${name}`);
      io.out(`daemons: ${daemons.map((d) => d.name).join(", ") || "none"}`);
    });
}
