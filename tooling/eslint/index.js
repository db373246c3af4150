// Shared flat ESLint config: type-checked rules for every package (docs/CONTRIBUTING.md, "Conventions").
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The package names of the apps (the daemons): no other package may import one. */
const APP_PACKAGES = new Set(
  readdirSync(join(repo, "apps"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => {
      try {
        return [JSON.parse(readFileSync(join(repo, "apps", entry.name, "package.json"), "utf8")).name];
      } catch {
        return [];
      }
    }),
);

/** The package name an import specifier points into (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * The shape of the package graph, checked in every package of the product (apps, actuators,
 * packages): state flows one way, so no package imports an app (the integration tests and the
 * benchmarks, which start several apps together, may), and the environment is read in one
 * module per package, `env.ts`, everything else taking it as options.
 */
export const shapePlugin = {
  rules: {
    "no-app-imports": {
      meta: { type: "problem", docs: { description: "no package imports an app" }, schema: [{ type: "string" }] },
      create(context) {
        const own = context.options[0];
        const check = (node, source) => {
          if (typeof source !== "string" || source.startsWith(".")) return;
          const target = packageOf(source);
          if (APP_PACKAGES.has(target) && target !== own) context.report({ node, message: `${own} imports the app ${target}: apps talk through the contracts in @coyote/spec, and tests that start several apps live in integration/` });
        };
        return {
          ImportDeclaration: (node) => check(node, node.source.value),
          ExportAllDeclaration: (node) => check(node, node.source.value),
          ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
          ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value),
        };
      },
    },
    "no-test-imports": {
      meta: { type: "problem", docs: { description: "product code imports no test helper" }, schema: [] },
      create(context) {
        const check = (node, source) => {
          if (typeof source !== "string") return;
          const intoTestFolder = source.startsWith(".") && relative(repo, resolve(dirname(context.filename), source)).split(sep).includes("test");
          const testingPackage = source === "@coyote/testing" || (source.startsWith("@") && source.split("/")[2] === "testing");
          if (intoTestFolder || testingPackage) context.report({ node, message: `${source} is a test helper: product code does not import tests' helpers (docs/CONTRIBUTING.md, "Tests")` });
        };
        return {
          ImportDeclaration: (node) => check(node, node.source.value),
          ExportAllDeclaration: (node) => check(node, node.source.value),
          ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
          ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value),
        };
      },
    },
    "env-in-env-ts": {
      meta: { type: "problem", docs: { description: "process.env is read in env.ts only" }, schema: [] },
      create(context) {
        if (basename(context.filename) === "env.ts") return {};
        return {
          MemberExpression(node) {
            if (node.object.type === "Identifier" && node.object.name === "process" && !node.computed && node.property.type === "Identifier" && node.property.name === "env") {
              context.report({ node, message: "process.env is read in this package's env.ts only: take the value as an option" });
            }
          },
        };
      },
    },
  },
};

/**
 * Whether a package folder is part of the product (an app, an actuator or a package) and so kept
 * to the graph's shape. The CLI is left out of the app rule: it is the supervisor, the one place
 * that starts every component.
 */
function productPackage(folder) {
  const parts = relative(repo, folder).split(sep);
  return parts.length === 2 && ["apps", "actuators", "packages"].includes(parts[0]);
}

/** The test files and test helpers of a package: `*.test.ts` beside the code, helpers in `src/test/`. */
const TEST_FILES = ["**/*.test.ts", "**/test/**/*.ts"];

/** The package that may import the apps: the supervisor that runs them. */
const COMPOSITION_ROOT = "@coyote/cli";

/** The package name in a folder's package.json. */
function packageName(folder) {
  try {
    return JSON.parse(readFileSync(join(folder, "package.json"), "utf8")).name;
  } catch {
    return undefined;
  }
}

/**
 * Builds the ESLint config for one package.
 * @param {string} tsconfigRootDir the package folder, so that type information comes from its tsconfig.
 */
export function config(tsconfigRootDir) {
  return tseslint.config(
    { ignores: ["dist/**", ".next/**", "node_modules/**", "next-env.d.ts"] },
    js.configs.recommended,
    ...tseslint.configs.strictTypeChecked,
    {
      languageOptions: {
        globals: { ...globals.node },
        parserOptions: { projectService: true, tsconfigRootDir },
      },
      rules: {
        "@typescript-eslint/no-non-null-assertion": "error",
        "@typescript-eslint/consistent-type-imports": "error",
        "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
        "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
        "@typescript-eslint/no-confusing-void-expression": ["error", { ignoreArrowShorthand: true }],
        "no-console": "error",
      },
    },
    ...(productPackage(tsconfigRootDir)
      ? [
          {
            files: ["**/*.ts", "**/*.tsx"],
            plugins: { coyote: shapePlugin },
            rules: {
              "coyote/no-app-imports": packageName(tsconfigRootDir) === COMPOSITION_ROOT ? "off" : ["error", packageName(tsconfigRootDir) ?? ""],
              "coyote/env-in-env-ts": "error",
            },
          },
          {
            // The tests and their helpers may import helpers; the product may not.
            files: ["**/*.ts", "**/*.tsx"],
            ignores: TEST_FILES,
            plugins: { coyote: shapePlugin },
            rules: { "coyote/no-test-imports": packageName(tsconfigRootDir) === "@coyote/testing" ? "off" : "error" },
          },
        ]
      : []),
    {
      // Tests and their helpers (a package's own in src/test/, docs/CONTRIBUTING.md "Tests").
      files: TEST_FILES,
      rules: {
        "@typescript-eslint/no-floating-promises": "off",
        "no-console": "off",
      },
    },
    {
      // Tests read the environment of the test run (CI, the programs they need): not product code.
      files: TEST_FILES,
      rules: { "coyote/env-in-env-ts": "off" },
    },
    {
      files: ["**/*.js", "**/*.mjs"],
      ...tseslint.configs.disableTypeChecked,
    },
  );
}
