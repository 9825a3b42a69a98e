// Listing latency against bucket size: fill one bucket in steps (100-byte objects, 64 in
// flight, spread over the peers) and, at each size, time up to 20 1,000-key pages through
// the first target, from the start and then following the cursor.
import { ADMIN_BEARER } from "../test/harness/credentials.ts";
import { log } from "./stats.ts";
import { createBucket, putSmall } from "./load.ts";
import { percentile } from "./stats.ts";

export interface ListPoint {
  objects: number;
  pages: number;
  p50ms: number;
  maxms: number;
  /** Small PUTs per second while filling up to this size. */
  fillPutsPerSec: number;
}

export async function timePages(base: string, bucket: string, objects: number, maxPages = 20): Promise<{ pages: number; p50ms: number; maxms: number }> {
  const times: number[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < maxPages; page++) {
    const url = `${base}/buckets/${bucket}/objects?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const t0 = performance.now();
    const res = (await (await fetch(url, { headers: { authorization: ADMIN_BEARER } })).json()) as { objects: unknown[]; nextCursor: string | null };
    times.push(performance.now() - t0);
    if (res.objects.length !== Math.min(1000, objects - page * 1000)) throw new Error(`page ${page} had ${res.objects.length} objects`);
    cursor = res.nextCursor;
    if (!cursor) break;
  }
  return { pages: times.length, p50ms: percentile(times, 0.5), maxms: Math.max(...times) };
}

/** Grow `bucket` through each of `sizes` (ascending) and time list pages at each. */
export async function measureList(targets: string[], sizes: number[], bucket = "list"): Promise<ListPoint[]> {
  await createBucket(targets[0], bucket);
  const points: ListPoint[] = [];
  let have = 0;
  for (const size of [...sizes].sort((a, b) => a - b)) {
    const fill = await putSmall(targets, bucket, { from: have, to: size, size: 100, inflight: 64, prefix: "k/" });
    have = size;
    const t = await timePages(targets[0], bucket, size);
    log(`list: ${size} objects (filled at ${fill.opsPerSec.toFixed(0)} PUT/s): page p50 ${t.p50ms.toFixed(1)} ms, max ${t.maxms.toFixed(1)} ms`);
    points.push({ objects: size, ...t, fillPutsPerSec: fill.opsPerSec });
  }
  return points;
}
