/**
 * OpenDKIM, the box's DKIM signer: a milter that Postfix passes outgoing mail through. Its entry
 * has the shape of the others in the daemons' catalogue (`catalogue.ts`); its configuration and
 * tables are rendered by the mail actuator under `mail/opendkim/`.
 */
import { readFile } from "node:fs/promises";
import type { NetConnectOpts } from "node:net";
import { join } from "node:path";
import type { DaemonDefinition, DaemonPaths } from "./catalogue.ts";
import { conversationProbe, type ProbeResult } from "./probes.ts";

/** OpenDKIM's configuration in a state folder (the mail actuator's `signerPaths(stateDir).conf`). */
export function openDkimConf(paths: Pick<DaemonPaths, "stateDir">): string {
  return join(paths.stateDir, "mail", "opendkim", "opendkim.conf");
}

/** The tables OpenDKIM re-reads on SIGUSR1, beside its configuration. */
function openDkimWatched(paths: Pick<DaemonPaths, "stateDir">): string[] {
  const root = join(paths.stateDir, "mail", "opendkim");
  return [join(root, "opendkim.conf"), join(root, "KeyTable"), join(root, "SigningTable"), join(root, "InternalHosts")];
}

/**
 * Where the milter listens, from the `Socket` line of an `opendkim.conf`: `local:/path`, or
 * `inet:port@host` (`[127.0.0.1]` or a bare address; no host means every interface, probed on
 * loopback).
 * @returns undefined when there is no usable Socket line.
 */
export function openDkimSocket(conf: string): NetConnectOpts | undefined {
  for (const raw of conf.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const match = /^Socket\s+(\S+)$/i.exec(line);
    if (!match?.[1]) continue;
    const value = match[1];
    if (value.startsWith("local:") || value.startsWith("unix:")) {
      const path = value.slice(value.indexOf(":") + 1);
      return path.startsWith("/") ? { path } : undefined;
    }
    const inet = /^inet6?:([0-9]{1,5})(?:@\[?([0-9A-Za-z.:-]+?)\]?)?$/.exec(value);
    const port = Number(inet?.[1]);
    if (!inet || port < 1 || port > 65535) return undefined;
    const host = inet[2] ?? "127.0.0.1";
    return { host: host === "0.0.0.0" || host === "localhost" ? "127.0.0.1" : host === "::" ? "::1" : host, port };
  }
  return undefined;
}

// The milter protocol's option negotiation: version 6, as Postfix's `milter_protocol = 6`.
const SMFIC_OPTNEG = 0x4f; // 'O'
const SMFIC_QUIT = 0x51; // 'Q'
const MILTER_VERSION = 6;
const REPLY_CAP = 1024;

function packet(command: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1, 0);
  head[4] = command;
  return Buffer.concat([head, data]);
}

/**
 * A real check that the milter serves: connects, negotiates options as Postfix does (SMFIC_OPTNEG,
 * version 6, every action and protocol step offered), and passes when the answer is an option
 * negotiation of version 2 or later. It says QUIT and closes. A deadline bounds it and at most
 * 1 KiB of answer is read.
 */
export function milterProbe(address: NetConnectOpts, timeoutMs: number): Promise<ProbeResult> {
  const where = "path" in address ? address.path : `${String(address.host)}:${address.port}`;
  const offer = Buffer.alloc(12);
  offer.writeUInt32BE(MILTER_VERSION, 0);
  offer.writeUInt32BE(0x1ff, 4);
  offer.writeUInt32BE(0x1fffff, 8);
  return conversationProbe(address, where, timeoutMs, {
    opening: packet(SMFIC_OPTNEG, offer),
    cap: REPLY_CAP + 5,
    expected: "milter negotiation",
    judge: (received) => {
      if (received.length < 5) return undefined;
      const length = received.readUInt32BE(0);
      if (length < 1 || length > REPLY_CAP) return { result: { ok: false, why: `${where} answered a milter packet of ${length} bytes` } };
      if (received.length < 4 + length) return undefined;
      const command = received[4];
      const version = length >= 5 ? received.readUInt32BE(5) : 0;
      if (command !== SMFIC_OPTNEG || version < 2) return { result: { ok: false, why: `${where} answered command 0x${(command ?? 0).toString(16)} (version ${version}), not an option negotiation` } };
      return { result: { ok: true }, farewell: packet(SMFIC_QUIT) };
    },
  });
}

/**
 * OpenDKIM: signs outgoing mail for Postfix. It starts as root and switches itself to the
 * `UserID` its configuration names (`opendkim:postfix`: the key copies are the `opendkim` user's,
 * the socket Postfix's group's), so it has no `user` of its own here. The supervisor reloads it
 * with SIGUSR1 when its configuration or tables change: OpenDKIM then re-reads them (all but
 * Socket, UserID and UMask, which need a restart). Its logs go to syslog; `logs/opendkim.log`
 * holds what it prints on standard error (a configuration it refuses, say).
 */
export const opendkim: DaemonDefinition = {
  name: "opendkim",
  summary: "DKIM signing of outgoing mail (OpenDKIM, a milter for Postfix)",
  packages: ["opendkim"],
  program: "opendkim",
  tools: [],
  passage: ["opendkim"],
  configFile: (p) => openDkimConf(p),
  watch: (p) => openDkimWatched(p),
  // -f: in the foreground; -x: this configuration only (a reload re-reads it, dropping any other
  // command-line value, so nothing else is given on the command line).
  args: (p) => ["-f", "-x", openDkimConf(p)],
  // The configuration's own check (`opendkim -n`): a refused file fails the start with the reason.
  prepare: { tool: "opendkim", args: (p) => ["-n", "-x", openDkimConf(p)] },
  reload: { kind: "signal", signal: "SIGUSR1" },
  ready: async (context) => {
    const conf = openDkimConf(context.paths);
    const text = await readFile(conf, "utf8").catch(() => undefined);
    const address = text === undefined ? undefined : openDkimSocket(text);
    if (address === undefined) return { ok: false, why: `no usable Socket line in ${conf}` };
    return milterProbe(address, context.timeoutMs);
  },
  stop: { signal: "SIGTERM", graceMs: 10_000 },
};
