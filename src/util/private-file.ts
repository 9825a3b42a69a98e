import { open, rename } from "node:fs/promises";

/** Write a file readable only by its owner, whole and fsynced before it appears under `file` (a crash never leaves half of it). */
export async function writePrivateFile(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}
