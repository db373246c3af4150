import { z } from "zod";
import { DomainName, mailRuntimePaths, SchemaVersion, ServiceId, type MailRuntimePaths } from "@coyote/spec";

/**
 * Which service owns each hosted domain, as of the last commit: `<stateDir>/mail/domains.json`.
 * `observe` reads it so that a service cannot take a domain another service already has.
 */
export const MailDomainIndex = z.strictObject({
  schemaVersion: SchemaVersion,
  owners: z.record(DomainName, ServiceId),
});
/** Which service owns each hosted domain. */
export type MailDomainIndex = z.infer<typeof MailDomainIndex>;

/** The files under `<stateDir>/mail/`, for one state folder (the contract is in `@coyote/spec`). */
export type MailPaths = MailRuntimePaths;

/** Where the actuator keeps its files in a state folder. */
export const mailPaths: (stateDir: string) => MailPaths = mailRuntimePaths;
