import { join } from "node:path";
import { z } from "zod";
import { DomainName, SchemaVersion, ServiceId } from "@coyote/spec";

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

/** The files under `<stateDir>/mail/`, for one state folder. */
export interface MailPaths {
  /** `<stateDir>/mail`. */
  readonly root: string;
  /** `<stateDir>/mail/services/<id>.json`: one fragment per service with mail. */
  readonly services: string;
  /** `<stateDir>/mail/dkim/<domain>.key` (0600) and `<domain>.json` (the DNS record). */
  readonly dkim: string;
  /** `<stateDir>/mail/domains.json`: domain owners as of the last commit. */
  readonly index: string;
  /** `<stateDir>/mail/postfix-reload-pending`: Postfix files changed and are not live yet. */
  readonly reloadPending: string;
}

/** Where the actuator keeps its files in a state folder. */
export function mailPaths(stateDir: string): MailPaths {
  const root = join(stateDir, "mail");
  return {
    root,
    services: join(root, "services"),
    dkim: join(root, "dkim"),
    index: join(root, "domains.json"),
    reloadPending: join(root, "postfix-reload-pending"),
  };
}
