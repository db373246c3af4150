// Plain JavaScript, so that starting the panel does not compile its config (and print about it).

/**
 * The workspace packages are TypeScript sources (their `exports` point at src/index.ts): Next
 * compiles them with the app. better-sqlite3 is a native addon and stays a Node require.
 * @type {import("next").NextConfig}
 */
const config = {
  transpilePackages: ["@coyote/spec", "@coyote/log"],
  serverExternalPackages: ["better-sqlite3", "pino"],
  poweredByHeader: false,
  reactStrictMode: true,
  // `npm run typecheck` and `npm run lint` check the app; the build need not do it twice.
  typescript: { ignoreBuildErrors: true },
  experimental: {
    // unauthorized() and forbidden() answer 401 and 403 with their own pages.
    authInterrupts: true,
    // A page's server code is loaded when it is first asked for, not every page's at start: an
    // idle panel holds about 5 MB less (bench/memory, docs/BENCHMARKS.md).
    preloadEntriesOnStart: false,
  },
};

export default config;
