// Removing a test's temp folders without blocking the event loop. A peer's data folder
// holds 256 chunk fan-out folders and a LevelDB, and the large-object tests leave GiBs of
// chunk files: removed synchronously, that took 0.4-0.6 s per 3-peer cluster on a loaded
// 2-core machine, with every timer of the next test waiting. Nothing uses a folder once
// its peers are stopped, so it is removed in the background; whatever is still being
// removed when the process exits is removed then, synchronously.
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";

/** Folders being removed, by path. */
const removing = new Map<string, Promise<void>>();
let exitHook = false;

/** Remove `dir` (recursively, if it exists) without blocking; the process's exit finishes the job. */
export function removeInBackground(dir: string): void {
  if (removing.has(dir)) return;
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const d of removing.keys()) rmSync(d, { recursive: true, force: true });
    });
  }
  const done = rm(dir, { recursive: true, force: true, maxRetries: 3 })
    .catch(() => {}) // the exit hook tries again
    .finally(() => {
      if (removing.get(dir) === done) removing.delete(dir);
    });
  removing.set(dir, done);
}
