/**
 * What the mail actuator does for one service: its fragment and its domains' DKIM keys and
 * records. The combined Postfix and Dovecot files are the commit's (`commit.ts`).
 */
import { join } from "node:path";
import { ActuatorError, errorText, readTextIfExists } from "@coyote/actuator";
import { requeueAfter } from "@coyote/actuator";
import type { ActuatorContext, Plan, Requeue, Target } from "@coyote/actuator";
import type { CoyoteLogger } from "@coyote/log";
import { writeFileAtomic } from "@coyote/spec";
import { dkimRecordOf, dkimRecordText, generateDkimKey } from "./dkim.ts";
import { ensureDir, ensureMode, removeFile, writeIfChanged } from "./files.ts";
import type { ResolvedOptions } from "./options.ts";
import type { MailPaths } from "./paths.ts";
import type { MailStep } from "./plan.ts";

async function ensureDkim(options: ResolvedOptions, paths: MailPaths, id: string, domain: string, logger: CoyoteLogger): Promise<void> {
  await ensureDir(paths.dkim);
  const keyPath = join(paths.dkim, `${domain}.key`);
  let pem = await readTextIfExists(keyPath);
  if (pem === undefined) {
    // Made only when missing and never replaced: receivers verify mail in flight against the
    // published key, so a new key would fail it until DNS caches expire.
    pem = await generateDkimKey();
    await writeFileAtomic(keyPath, pem, { mode: 0o600 });
    logger.info({ domain }, `created the DKIM key of ${domain}`);
  } else {
    await ensureMode(keyPath, 0o600);
  }
  let text: string;
  try {
    text = dkimRecordText(dkimRecordOf(pem, options.dkimSelector));
  } catch (error) {
    throw new ActuatorError("InvalidDkimKey", `applying mail for service ${id}: the DKIM key of ${domain} cannot be used (${errorText(error)})`, { terminal: true, cause: error });
  }
  await writeIfChanged(join(paths.dkim, `${domain}.json`), text, 0o644);
}

/**
 * Carries out the plan of one service, step by step; each step tolerates a half-finished earlier apply.
 * @returns a {@link Requeue} when the plan waits for the daemons to serve the service.
 * @throws ActuatorError `InvalidDkimKey` (terminal).
 */
export async function applyMail(resolved: ResolvedOptions, paths: MailPaths, plan: Plan<MailStep>, target: Target, context: ActuatorContext): Promise<Requeue | undefined> {
  let requeue: Requeue | undefined;
  const fragmentPath = join(paths.services, `${target.id}.json`);
  for (const step of plan.steps) {
    switch (step.kind) {
      case "remove-dkim":
        await removeFile(join(paths.dkim, `${step.domain}.json`));
        await removeFile(join(paths.dkim, `${step.domain}.key`));
        context.logger.info({ domain: step.domain }, `removed the DKIM key and record of ${step.domain}`);
        break;
      case "write-fragment":
        await ensureDir(paths.services);
        await writeFileAtomic(fragmentPath, step.text, { mode: 0o600 });
        break;
      case "remove-fragment":
        await removeFile(fragmentPath);
        break;
      case "ensure-dkim":
        await ensureDkim(resolved, paths, target.id, step.domain, context.logger);
        break;
      case "await-daemons":
        // Not a change: the service is not live yet, so the condition says why and it is looked at again.
        requeue = requeueAfter(step.afterMs, step.reason, step.message);
        break;
    }
  }
  return requeue;
}
