// Chunk traffic allocates large short-lived buffers outside the JS heap, and the garbage
// collector, which paces itself by heap growth, lets them pile up to hundreds of MB
// before collecting. Nudging an asynchronous collection every few dozen MB of chunk
// traffic keeps a peer's RSS near its live set (see test/cluster/memory.test.ts).
// Measured on a 1 GiB upload and download: asynchronous hints (Bun.gc(false)) left the
// peak at +250 MB; a synchronous collection every 64 MiB kept it near +100 MB. With four
// 64 MiB uploads in flight (bun run bench) every 32 MiB keeps peers under 250 MB for
// about 5% of large-object throughput.

const NUDGE_EVERY_BYTES = 32 * 1024 * 1024;
let sinceNudge = 0;

/** Count bytes of chunk data handled; every 32 MiB, collect garbage. */
export function noteBufferTraffic(bytes: number): void {
  sinceNudge += bytes;
  if (sinceNudge >= NUDGE_EVERY_BYTES) {
    sinceNudge = 0;
    Bun.gc(true);
  }
}
