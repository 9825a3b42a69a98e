// Removing a test's temp folders without making the next test wait. A peer's data folder
// holds 256 chunk fan-out folders and a LevelDB, and the large-object tests leave GiBs of
// chunk files: removed with rmSync, that took 0.4-0.6 s per 3-peer cluster on a loaded
// 2-core machine, with every timer of the next test waiting. Nothing uses a folder once its
// peers are stopped, so it is removed in the background while the file's next tests run;
// test/preload.ts waits for whatever is left after each file (bun test runs no "exit"
// handlers, and with --parallel a worker's children do not outlive the file).
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";

/** Removals under way. */
const pending = new Set<Promise<void>>();

/** Remove `dir` (recursively, if it exists) in the background. */
export function removeInBackground(dir: string): void {
  const done: Promise<void> = rm(dir, { recursive: true, force: true, maxRetries: 3 })
    .catch(() => rmSync(dir, { recursive: true, force: true }))
    .finally(() => pending.delete(done));
  pending.add(done);
}

/** Resolves once every removal started so far has ended. */
export async function settleRemovals(): Promise<void> {
  while (pending.size) await Promise.allSettled([...pending]);
}
