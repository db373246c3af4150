import type { ComponentDefinition } from "@coyote/component";

/**
 * The coyote-crm component as `coyote up` and `coyote run` know it: the web panel (activation
 * wizard, admin dashboard, webshop) on the server spec's `ports.panel`, from the app built by
 * `npm run build` (which `coyote up` runs).
 */
export const component: ComponentDefinition = {
  name: "coyote-crm",
  summary: "The web panel: activation wizard, admin dashboard and webshop",
  async start(context) {
    // Next.js is loaded only when the panel starts, not whenever the CLI lists the components.
    const { startCrm } = await import("./server.ts");
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
