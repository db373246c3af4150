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
  // unauthorized() and forbidden() answer 401 and 403 with their own pages.
  experimental: { authInterrupts: true },
};

export default config;
