/** The domain-claim check the store makes before it writes a customer's service. */
import { serviceNameIssues } from "./domains.ts";
import { ContractError } from "./errors.ts";
import type { ServerSpec, ServiceSpec } from "./specs.ts";
import type { SpecReadEntry } from "./store-types.ts";
import { formatPath, serverOrDefaults } from "./validate.ts";

/**
 * Refuses a customer's service that claims a name no one may claim, or one that equals, holds or
 * lies in a name another service or the box itself has (domains.ts). A service without an owner
 * is the admin's own, whose names the admin answers for, so the caller checks only owned ones.
 * @param spec the service being applied.
 * @param file the name of its document in errors.
 * @param current every spec now stored; bad files are ignored.
 * @throws ContractError SPEC_ERR_INVALID naming each refused field.
 */
export function checkClaimedNames(spec: ServiceSpec, file: string, current: readonly SpecReadEntry[]): void {
  const specs = current.flatMap((entry) => ("spec" in entry ? [entry.spec] : []));
  const server = serverOrDefaults(specs.find((s): s is ServerSpec => s.kind === "Server"));
  const services = specs.filter((s): s is ServiceSpec => s.kind === "Service");
  const issues = serviceNameIssues(spec, server, services);
  if (issues.length > 0) throw new ContractError("SPEC_ERR_INVALID", file, issues.map((issue) => ({ field: formatPath(issue.path), message: issue.message })));
}
