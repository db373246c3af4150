// Shared flat ESLint config: type-checked rules for every package (CONVENTIONS.md, "Workspace").
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

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
    {
      files: ["**/*.test.ts", "**/test/**/*.ts"],
      rules: {
        "@typescript-eslint/no-floating-promises": "off",
        "no-console": "off",
      },
    },
    {
      files: ["**/*.js", "**/*.mjs"],
      ...tseslint.configs.disableTypeChecked,
    },
  );
}
