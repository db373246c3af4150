/**
 * Specs shared by the store's tests and their child-process fixtures.
 */

/** The author of the test commits. */
export const AUTHOR = { name: "Ada Admin", email: "ada@example.org" } as const;

/**
 * A valid service spec. Variants differ in size (variant 1 carries many DNS records) so that a torn
 * write could not pass for the other variant.
 * @param id the service id.
 * @param variant 0 or 1, or any other number for a description-only change.
 */
export function serviceSpec(id: string, variant: number): Record<string, unknown> {
  const records =
    variant === 1
      ? Array.from({ length: 120 }, (_, i) => ({ name: `host${i}`, type: "A", address: `192.0.2.${(i % 250) + 1}` }))
      : [{ name: "www", type: "CNAME", target: `${id}.example.org` }];
  return {
    schemaVersion: 1,
    kind: "Service",
    id,
    description: `${id} variant ${variant}`,
    domains: [{ name: `${id}.example.org`, records }],
    web: { hostnames: [`${id}.example.org`], backend: { kind: "upstream", address: "127.0.0.1:8080" } },
  };
}
