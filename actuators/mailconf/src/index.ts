/**
 * `@coyote/actuator-mailconf`: hosted mail. Postfix virtual domains, mailboxes
 * and aliases in an instance of its own, Dovecot users with hashed passwords, and a DKIM key per
 * domain whose public half dnsconf publishes.
 *
 * Under `<stateDir>/mail/`: `services/<id>.json` (one fragment per service, 0600),
 * `dkim/<domain>.key` (0600) and `dkim/<domain>.json` (the record dnsconf reads), `domains.json`
 * (domain owners as of the last commit) and, between a change and its reload,
 * `postfix-reload-pending`.
 */
export { createMailActuator, mailPaths, MAIL_ACTUATOR_ID, MAIL_CONDITION, MailDomainIndex } from "./actuator.ts";
export type { DkimObserved, MailObserved, MailPaths, MailStep } from "./actuator.ts";
export { DkimRecordFile, dkimRecordOf, dkimRecordText, generateDkimKey } from "./dkim.ts";
export { MAILCONF_ERRORS, MailconfError } from "./errors.ts";
export type { MailconfErrorCode } from "./errors.ts";
export { buildFragment, fragmentText, FragmentMailbox, MailAddress, MailFragment } from "./fragment.ts";
export type { RejectedMailbox } from "./fragment.ts";
export { checkListen, resolveOptions, tlsChainFileOf } from "./options.ts";
export type { DovecotOptions, MailActuatorOptions, PostfixOptions, ResolvedOptions } from "./options.ts";
export { DEFAULT_PASSWORD_SCHEMES, hashPassword, normalizePasswordHash } from "./password.ts";
export type { HashPasswordOptions, HashScheme, NormalizedHash } from "./password.ts";
export { MAP_FILES, renderMainCf, renderMaps, renderMasterCf } from "./render.ts";
export { AUTH_SOCKET_NAME, dovecotRuntime, renderDovecotAuthConf, renderDovecotConf } from "./render-dovecot.ts";
export type { DomainConflict, RenderedMaps, UsersFileOptions } from "./render.ts";
export { milterAddresses, postfixMilterLines, readSignerDomains, renderSignerFiles, signerPaths, writeSignerFiles } from "./dkim-signer.ts";
export type { DkimSignerOptions, MilterSocket, SignerAccount, SignerDomain, SignerFiles, SignerPaths, SignerWriteResult, SkippedDomain } from "./dkim-signer.ts";
