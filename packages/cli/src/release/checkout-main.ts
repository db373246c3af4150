/**
 * A checkout's release, for install.sh before any release is built: run by Node from this source
 * as it is (no dependencies installed, no build).
 *
 *   node checkout-main.ts CHECKOUT                prints the release's name
 *   node checkout-main.ts CHECKOUT --copy-to DIR  copies the release's files into DIR (a new folder), then prints the name
 *
 * Exits 1 with the reason on standard error when the checkout cannot make a release, 2 on a wrong
 * command line.
 */
import { mkdir } from "node:fs/promises";
import { readProcessEnv } from "../env.ts";
import { copyEntries, readReleaseSource, ReleaseSourceError } from "./source.ts";

const USAGE = "usage: node checkout-main.ts CHECKOUT [--copy-to DIR]";

async function main(args: readonly string[]): Promise<number> {
  const [checkout, flag, target, ...rest] = args;
  if (checkout === undefined || rest.length > 0 || (flag !== undefined && (flag !== "--copy-to" || target === undefined || target === ""))) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  try {
    const source = await readReleaseSource(checkout, readProcessEnv().processEnv);
    if (target !== undefined) {
      // A new folder: a half-copied one from an interrupted run is the caller's to remove first.
      await mkdir(target, { mode: 0o755 });
      await copyEntries(target, source.entries);
    }
    process.stdout.write(`${source.release}\n`);
    return 0;
  } catch (error) {
    if (!(error instanceof ReleaseSourceError) && !(error instanceof Error && "code" in error)) throw error;
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
