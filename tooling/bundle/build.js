// `npm run build` for the bundle: writes dist/ at the checkout's root.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { HOME, bundle } from "./index.js";

const outdir = join(HOME, "dist");
// Chunks are named by content hash: old ones would pile up.
await rm(outdir, { recursive: true, force: true });
const files = await bundle(outdir);
process.stdout.write(`bundle: ${String(files.filter((f) => f.endsWith(".mjs")).length)} files in ${outdir}\n`);
