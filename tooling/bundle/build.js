// `npm run build` for the bundle: writes dist/ at the checkout's root.
import { readdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { HOME, bundle } from "./index.js";

const outdir = join(HOME, "dist");
const files = new Set((await bundle(outdir)).map((file) => basename(file)));
// Chunks are named by their content's hash: the ones of an earlier build are removed once the new
// build is whole (never before, so that a process starting meanwhile finds a whole bundle).
for (const name of await readdir(outdir)) if (!files.has(name)) await rm(join(outdir, name), { force: true });
process.stdout.write(`bundle: ${String([...files].filter((f) => f.endsWith(".mjs")).length)} files in ${outdir}\n`);
