/**
 * `@coyote/actuator-dnsconf`: authoritative DNS zones from service specs (docs/ARCHITECTURE.md, "Components").
 *
 * - {@link createDnsActuator}: the actuator (`actuator.dnsconf.knot` or `actuator.dnsconf.builtin`).
 * - {@link zonesFor}: the pure zone model, for anything that needs to know what a spec publishes
 *   (the crm's preview, the snickers actuator's DNS-01 checks).
 * - {@link DkimRecordFile} and {@link dkimFilePath}: the contract with the mail actuator, which
 *   publishes each domain's DKIM key in `<stateDir>/mail/dkim/<domain>.json`.
 * - {@link startDnsServer} and {@link answerQuery}: the built-in server, usable on its own.
 * - {@link KnotLiveCheck}: what the running Knot serves (`knotc zone-status`), the truth behind
 *   `DnsReady` with the Knot backend.
 * - {@link queryDelegation}: which name servers a parent zone's server delegates a name to.
 * - {@link publishAcmeChallenge} and {@link withdrawAcmeChallenge}: ACME DNS-01 records the
 *   built-in server serves on top of its zones, for snickers' wildcard certificates.
 * - The renderers ({@link renderZoneFile}, {@link renderZoneJson}, {@link renderKnotConf}) and the
 *   JSON zone file schema {@link DnsZoneFile}.
 */
export { createDnsActuator } from "./actuator.ts";
export { AcmeChallengesFile, acmeChallengesPath, publishAcmeChallenge, readAcmeChallenges, waitForTxt, withdrawAcmeChallenge } from "./challenges.ts";
export type { DnsActuator, DnsActuatorOptions, DnsObserved, DnsStep, KnotBackendOptions, ObservedZoneFile } from "./actuator.ts";
export { answerQuery, EDNS_PAYLOAD_SIZE, indexZones, RCODE } from "./answer.ts";
export { queryDelegation } from "./delegation.ts";
export { DNSCONF_ERRORS, DnsconfError } from "./errors.ts";
export { KnotLiveCheck, parseZoneStatus } from "./knot-live.ts";
export type { KnotLive, KnotLiveOptions } from "./knot-live.ts";
export type { DnsconfErrorCode } from "./errors.ts";
export type { ZoneSet } from "./answer.ts";
export { canonicalIPv6, compareNames, isInZone, isOwnerName } from "./names.ts";
export { DnsZoneFile, knotListenAddress, parseZoneFileHeader, parseZoneJsonHeader, renderKnotConf, renderZoneFile, renderZoneJson } from "./render.ts";
export type { KnotConfOptions } from "./render.ts";
export { loadZoneFiles, startDnsServer } from "./server.ts";
export type { DnsServer, DnsServerOptions, ZoneLoadReport } from "./server.ts";
export {
  DEFAULT_TTL,
  DkimRecordFile,
  dkimFilePath,
  nextSerial,
  quoteCharacterString,
  rdataText,
  SOA_TIMERS,
  splitTxt,
  TXT_CHUNK_BYTES,
  typeCode,
  zonesFor,
} from "./zone.ts";
export type { DkimRecord, RecordData, RecordType, Zone, ZoneRecord, ZoneSoa, ZonesForExtras } from "./zone.ts";
