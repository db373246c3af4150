import { readFile, stat } from "node:fs/promises";
import { Readable } from "node:stream";
import type Docker from "dockerode";
import { statusCode } from "./engine.ts";

/**
 * The image of the network holders: one static busybox, imported locally (no registry is
 * reachable, and a unit's image may have no `sleep`). The tag names the layout of the image.
 */
export const HOLDER_IMAGE = "coyote/holder:1";

/** What a holder runs: a sleep that never ends by itself (the longest one `sleep` takes). */
export const HOLDER_COMMAND = ["/busybox", "sleep", "2147483647"] as const;

/** The label naming the unit a network holder belongs to. */
export const HOLDER_LABEL = "coyote.holder";

/** Debian's busybox-static, the default binary of {@link HOLDER_IMAGE}. */
export const DEFAULT_HOLDER_BINARY = "/usr/bin/busybox";

/** A static busybox is about 2 MiB; anything far bigger is not one. */
const MAX_BINARY_BYTES = 32 * 1024 * 1024;

/** Writes `value` as a NUL-terminated octal field of `width` bytes at `offset`. */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

/**
 * A ustar archive holding one executable file at the root. Pure; the engine's import reads it.
 * @throws Error for a name that does not fit a ustar header.
 */
export function singleFileTar(name: string, content: Buffer): Buffer {
  if (!/^[A-Za-z0-9._-]{1,99}$/.test(name)) throw new Error(`holder image: file name ${JSON.stringify(name)} does not fit a tar header`);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, "ascii");
  octal(header, 100, 8, 0o755);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, content.length);
  octal(header, 136, 12, 0);
  header.write("        ", 148, 8, "ascii"); // the checksum is summed with its own field as spaces
  header.write("0", 156, 1, "ascii");
  header.write("ustar\0" + "00", 257, 8, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  // Two empty blocks end the archive.
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/**
 * Imports {@link HOLDER_IMAGE} from a static busybox when the engine lacks it.
 * @throws Error naming the binary when it is missing or not a plausible static binary, or the
 *   engine's refusal.
 */
export async function ensureHolderImage(docker: Docker, binary: string): Promise<void> {
  try {
    await docker.getImage(HOLDER_IMAGE).inspect();
    return;
  } catch (error) {
    if (statusCode(error) !== 404) throw error;
  }
  const info = await stat(binary).catch((error: unknown) => {
    throw new Error(`holder image: ${binary} is missing (${(error as NodeJS.ErrnoException).code ?? String(error)}); install Debian's busybox-static`, { cause: error });
  });
  if (!info.isFile() || info.size === 0 || info.size > MAX_BINARY_BYTES) throw new Error(`holder image: ${binary} is not a static busybox binary (a regular file of at most ${MAX_BINARY_BYTES} bytes)`);
  const tar = singleFileTar("busybox", await readFile(binary));
  const [repo, tag] = HOLDER_IMAGE.split(":");
  const progress = await docker.importImage(Readable.from([tar]), { repo, tag });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(progress, (error: Error | null) => (error ? reject(new Error(`holder image: importing ${HOLDER_IMAGE}: ${error.message}`, { cause: error })) : resolve()));
  });
}
