import type { ComponentContext, ComponentDefinition } from "@coyote/component";

/** What this module needs of server.ts's startCrm. */
export type StartCrm = (options: { stateDir: string; logger: ComponentContext["logger"] }) => Promise<{ close(): Promise<void> }>;

/**
 * The coyote-crm component as `coyote up` and `coyote run` know it: the web panel (activation
 * wizard, admin dashboard, webshop) on the server spec's `ports.panel`, from the app built by
 * `npm run build` (which `coyote up` runs).
 */
export const component: ComponentDefinition = {
  name: "coyote-crm",
  summary: "The web panel: activation wizard, admin dashboard and webshop",
  async start(context) {
    // Next.js is loaded only when the panel starts, not whenever the CLI lists the components;
    // and by a URL, so that the packages that list the components (the CLI) do not type-check
    // the web app against Next's global types.
    const { startCrm } = (await import(new URL("./server.ts", import.meta.url).href)) as { startCrm: StartCrm };
    const crm = await startCrm({ stateDir: context.stateDir, logger: context.logger });
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => (finish = resolve));
    return {
      done,
      async stop() {
        await crm.close();
        finish();
      },
    };
  },
};
