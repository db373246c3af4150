/**
 * Observing: the host files that matter to one service, the accounts of its domains, and the
 * credentials its spec names. The host files are cached across services, since every service's
 * observe needs every VirtualHost's owner.
 */
import { join } from "node:path";
import { DirectoryCache, memoizeByIdentity, type ActuatorContext, type Target } from "@coyote/actuator";
import { certificateFileName, readCredentials } from "@coyote/spec";
import { foldersShared, readCertificate, HOST_FILE_NAME, readAccounts, readText, type XmppLayout } from "./files.ts";
import type { LiveCheck } from "./live.ts";
import { HOST_FILE_SUFFIX, parseHostFile } from "./render.ts";
import type { ObservedAccount, ObservedCertificate, ObservedHostFile, XmppObserved } from "./types.ts";

/** The actuator's `observe`, and the host-file cache `commit` reads too. */
export interface XmppObserver {
  /** Every `conf.d/*.cfg.lua` file, re-read only when it changed. */
  readonly hostFiles: DirectoryCache<ObservedHostFile>;
  /** Observes one service (see XmppObserved). */
  observe(target: Target, context: ActuatorContext): Promise<XmppObserved>;
}

/** Makes the observer of one actuator; nothing is read until it is called. */
export function createObserver(layout: XmppLayout, live?: LiveCheck): XmppObserver {
  // Every service's observe needs every VirtualHost's owner; the cache re-reads only what changed.
  const hostFiles = new DirectoryCache<ObservedHostFile>(
    layout.hostsDir,
    (file) => file.endsWith(HOST_FILE_SUFFIX) && !file.startsWith("."),
    (file, content) => ({ file, content, ...parseHostFile(content) }),
  );

  // Who owns which files, and which files define each VirtualHost (by the host or the file name).
  const hostIndex = memoizeByIdentity((files: ReadonlyMap<string, ObservedHostFile>) => {
    const byOwner = new Map<string, ObservedHostFile[]>();
    const definers = new Map<string, ObservedHostFile[]>();
    for (const file of files.values()) {
      if (file.owner !== undefined) byOwner.set(file.owner, [...(byOwner.get(file.owner) ?? []), file]);
      const named = HOST_FILE_NAME.exec(file.file)?.[1];
      for (const host of new Set(named === undefined ? file.hosts : [...file.hosts, named])) definers.set(host, [...(definers.get(host) ?? []), file]);
    }
    return { byOwner, definers };
  });

  return {
    hostFiles,

    async observe(target: Target, context: ActuatorContext): Promise<XmppObserved> {
      // Only the files that matter to this service: those it owns and those that define (or are
      // named after) one of its domains. The index is built once per state of the folder, so a
      // resync of n services does not look at n files n times.
      const index = hostIndex(await hostFiles.read());
      const wantedDomains = target.spec?.xmpp === undefined ? [] : target.spec.domains.map((d) => d.name);
      const relevant = new Set<ObservedHostFile>(index.byOwner.get(target.id) ?? []);
      for (const domain of wantedDomains) for (const file of index.definers.get(domain) ?? []) relevant.add(file);
      const files = [...relevant].sort((a, b) => a.file.localeCompare(b.file));
      const domains = new Set<string>(wantedDomains);
      for (const file of files) {
        const domain = HOST_FILE_NAME.exec(file.file)?.[1];
        if (domain !== undefined && file.owner === target.id) domains.add(domain);
      }
      const accounts = new Map<string, ObservedAccount[]>();
      const certificates = new Map<string, ObservedCertificate>();
      for (const domain of [...domains].sort()) {
        accounts.set(domain, await readAccounts(layout.dataDir, domain, layout.owner));
        const issued = await readCertificate(join(layout.certificateSource, certificateFileName(domain)), undefined);
        const copy = await readCertificate(join(layout.certificatesDir, `${domain}.pem`), layout.owner);
        certificates.set(domain, { issued: issued?.content, copy: copy?.content, copyMetadataOk: copy?.metadataOk ?? false });
      }
      let credentials: ReadonlyMap<string, string> = new Map();
      if (target.spec !== undefined) {
        const read = await readCredentials(target.spec, (name) => context.store.readSecret(name));
        if (read.missing.length > 0) context.logger.warn({ serviceId: target.id, secrets: read.missing }, "xmpp credentials named by the spec are missing from secrets/");
        credentials = read.hashes;
      }
      const prosody = wantedDomains.length > 0 ? await live?.check(context.signal) : undefined;
      const shared = wantedDomains.length > 0 ? await foldersShared(layout) : true;
      return { mainConfig: await readText(layout.configFile), hostFiles: files, accounts, credentials, certificates, foldersShared: shared, ...(prosody === undefined ? {} : { live: prosody }) };
    },
  };
}
