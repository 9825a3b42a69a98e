// A time on disk past which nothing this peer promised before it stopped can still be in
// force: read leases it granted (src/cache/manifest-leases.ts), consensus promises it made
// (src/metadata/consensus.ts). Kept in one small file rewritten only when a promise would
// outlive it, then pushed `stepMs` ahead, so the fsync is paid once per step, not per promise.
// After a crash the peer reads the time the file holds and honours it.
import { mkdir, open, readFile, rename } from "node:fs/promises";
import path from "node:path";

/** One horizon file. */
export interface Horizon {
  /** What the file held when opened (wall ms; 0: no file, nothing was promised before). */
  readonly earlier: number;
  /** Make sure the file covers `wallMs`, writing it (fsynced) first if it does not. */
  cover(wallMs: number): Promise<void>;
}

/** Open (read) the horizon in `file`. */
export async function openHorizon(file: string, stepMs: number): Promise<Horizon> {
  const text = await readFile(file, "utf8").catch(() => "");
  const parsed = Number.parseInt(text, 10);
  const earlier = Number.isFinite(parsed) ? parsed : 0;
  let covered = earlier;
  let writing: Promise<void> | undefined;

  async function write(until: number): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(String(until));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    covered = until;
  }

  return {
    earlier,
    async cover(wallMs) {
      while (wallMs > covered) {
        writing ??= write(wallMs + stepMs).finally(() => (writing = undefined));
        await writing;
      }
    },
  };
}
