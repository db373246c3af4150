// The bundle of the coyote command: what it builds and where (build.js runs it).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

/** The checkout (or release) folder: the bundle is written to its `dist/`. */
export const HOME = resolve(import.meta.dirname, "..", "..");

/**
 * The entries of the bundle, by output name. `coyote.mjs` is the command; `component.mjs <name>`
 * is one component's process, as `coyote up` runs it, which loads that component's package only.
 * The others are loaded by path at run time, so they are entries of their own: snitch-proxy's cluster forks its worker
 * by file, and the panel's server is imported only when the panel starts (it pulls in Next.js).
 */
export const ENTRIES = {
  coyote: "packages/cli/src/main.ts",
  component: "packages/cli/src/component-main.ts",
  "snitch-proxy-worker": "apps/snitch-proxy/src/worker.ts",
  "crm-server": "apps/coyote-crm/src/server.ts",
};

/**
 * Source rewrites that keep a module's meaning once it is bundled into `dist/`. Each names the
 * exact text it replaces, and the build fails when that text is gone, so that a change to the
 * source cannot silently leave a bundle that loads the wrong file.
 */
const REWRITES = [
  {
    // The panel's server is a bundle entry of its own (it is imported by URL, to keep Next.js out
    // of the processes that only list the components).
    file: "apps/coyote-crm/src/index.ts",
    from: 'new URL("./server.ts", import.meta.url)',
    to: () => 'new URL("./crm-server.mjs", import.meta.url)',
  },
  {
    // The panel finds its built app (`.next/`) beside its sources, in the checkout.
    file: "apps/coyote-crm/src/server.ts",
    from: "fileURLToPath(import.meta.url)",
    to: (outdir) => `fileURLToPath(new URL(${JSON.stringify(relative(outdir, join(HOME, "apps/coyote-crm/src/server.ts")).split(sep).join("/"))}, import.meta.url))`,
  },
];

/** Everything but the workspace's own packages stays in node_modules: native addons, Next.js, pino, ... */
const externalPackages = {
  name: "external-packages",
  setup(builder) {
    builder.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@coyote/")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** Applies {@link REWRITES} for the output folder `outdir`. */
function rewrites(outdir) {
  return {
    name: "rewrites",
    setup(builder) {
      for (const rewrite of REWRITES) {
        const path = join(HOME, rewrite.file);
        builder.onLoad({ filter: new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`) }, async () => {
          const text = await readFile(path, "utf8");
          if (!text.includes(rewrite.from)) throw new Error(`bundle: ${rewrite.file} no longer contains ${JSON.stringify(rewrite.from)}; update tooling/bundle/index.js`);
          return { contents: text.replaceAll(rewrite.from, rewrite.to(outdir)), loader: "ts", resolveDir: dirname(path) };
        });
      }
    },
  };
}

/**
 * Bundles the entries into `outdir` (`<checkout>/dist` by default): ES modules for Node 24, code
 * shared between entries in chunks beside them (one copy of each module per process), with
 * source maps so that a stack trace names the TypeScript source.
 * @returns the files written.
 */
export async function bundle(outdir = join(HOME, "dist")) {
  const result = await build({
    absWorkingDir: HOME,
    entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([name, file]) => [name, join(HOME, file)])),
    outdir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node24",
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunk-[hash]",
    sourcemap: "linked",
    metafile: true,
    logLevel: "warning",
    legalComments: "none",
    plugins: [externalPackages, rewrites(outdir)],
  });
  return Object.keys(result.metafile.outputs);
}
