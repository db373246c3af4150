// Finds the web app's routes from its file system (Next.js App Router conventions), so that a new
// admin page or API is checked the day it lands, without anyone updating a list.
import { readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { REPO_ROOT } from "./appliance.ts";

/** The web app's `app/` folder. */
export const APP_DIR = join(REPO_ROOT, "apps", "coyote-crm", "src", "app");

/** The value put in place of a dynamic segment (`[id]`, `[...slug]`). */
export const SAMPLE_PARAM = "x";

/**
 * Maps a route file's folder (relative to `app/`) to its URL path: route groups `(x)` and parallel
 * route slots `@x` are not part of the URL; dynamic segments get {@link SAMPLE_PARAM}.
 * @returns undefined for a folder that is not routable (a private `_x` folder).
 */
export function urlOfFolder(folder: string): string | undefined {
  const parts: string[] = [];
  for (const segment of folder.split(sep).filter((s) => s !== "" && s !== ".")) {
    if (segment.startsWith("_")) return undefined;
    if (/^\(.*\)$/.test(segment) || segment.startsWith("@")) continue;
    parts.push(/^\[.*\]$/.test(segment) ? SAMPLE_PARAM : segment);
  }
  return `/${parts.join("/")}`;
}

async function walk(dir: string): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await walk(path)));
    else found.push(path);
  }
  return found;
}

/**
 * The URLs of the route files named `fileName` (`page` or `route`, any of .tsx/.ts/.jsx/.js)
 * under `app/<under>`, sorted and without duplicates.
 */
export async function routesUnder(under: string, fileName: "page" | "route"): Promise<string[]> {
  const files = await walk(join(APP_DIR, under));
  const urls = new Set<string>();
  for (const file of files) {
    const base = file.split(sep).at(-1) ?? "";
    if (!new RegExp(`^${fileName}\\.(tsx|ts|jsx|js)$`).test(base)) continue;
    const url = urlOfFolder(relative(APP_DIR, join(file, "..")));
    if (url !== undefined) urls.add(url);
  }
  return [...urls].sort();
}
