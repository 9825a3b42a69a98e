// One repair scan on one peer over synthetic chunk ids (ids only, no data): the real
// chunk repair pass (src/repair/chunk-repair.ts) over a store that lists generated ids,
// the real ring over three members (rf 3, so each chunk is asked about at two owners),
// and owners that answer in-process that they hold everything: the steady state that a
// peer scans every 10 s. Prints time and memory per size and the ns per chunk, which
// must not grow with the count. Each size runs in its own process so that memory figures
// start from the same baseline.
//   bun bench/repair-scan.ts [--sizes 100000,1000000]
import { parseArgs } from "node:util";
import { createChunkRepair } from "../src/repair/chunk-repair.ts";
import { createRateLimiter } from "../src/repair/rate-limiter.ts";
import { createLogger } from "../src/util/log.ts";
import { syntheticClient, syntheticPlacement, syntheticStore } from "../test/harness/synthetic-chunks.ts";

/** One scan's figures. */
export interface ScanResult {
  ids: number;
  ms: number;
  nsPerChunk: number;
  /** Of which: generating and listing the synthetic ids (what a real store's folder reads would cost instead). */
  listNsPerChunk: number;
  steps: number;
  /** Highest heap use during the scan above the heap before it, MB. */
  peakHeapDeltaMB: number;
  /** Highest resident set size during the scan above the one before it, MB. */
  peakRssDeltaMB: number;
}

/** The figures for every size and the growth of the per-chunk cost from the smallest to the largest. */
export interface RepairScanResult {
  sizes: ScanResult[];
  /** ns per chunk at the largest size / at the smallest. */
  growth: number;
}

export const DEFAULT_SIZES = [100_000, 1_000_000];
const MB = 1e6;

/** Drive one pass, sampling memory after every step. */
async function scanOnce(ids: number): Promise<ScanResult> {
  const log = createLogger("bench", () => {}, "error");
  const make = (n: number) =>
    createChunkRepair({
      self: "peer-a",
      store: syntheticStore(n),
      chunks: syntheticClient(),
      placement: syntheticPlacement(["peer-a", "peer-b", "peer-c"]),
      concurrency: 4,
      limiter: createRateLimiter(1e12),
      collecting: () => false,
      log,
    });
  const signal = new AbortController().signal;
  for await (const _ of make(20_000).pass(signal)); // warm up the JIT, so the smaller size does not carry it alone

  let t = performance.now();
  for await (const _ of syntheticStore(ids).list());
  const listNsPerChunk = ((performance.now() - t) * 1e6) / ids;

  const repair = make(ids);
  Bun.gc(true);
  const before = process.memoryUsage();
  let peakHeap = before.heapUsed;
  let peakRss = before.rss;
  let steps = 0;
  t = performance.now();
  for await (const _ of repair.pass(signal)) {
    steps++;
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakRss = Math.max(peakRss, m.rss);
  }
  const ms = performance.now() - t;
  if (repair.stats.underReplicated !== 0) throw new Error(`scan found ${repair.stats.underReplicated} under-replicated chunks in a healthy synthetic mesh`);
  return { ids, ms, nsPerChunk: (ms * 1e6) / ids, listNsPerChunk, steps, peakHeapDeltaMB: (peakHeap - before.heapUsed) / MB, peakRssDeltaMB: (peakRss - before.rss) / MB };
}

/** Measure each size in a fresh process. */
export async function measureRepairScan(sizes: number[] = DEFAULT_SIZES): Promise<RepairScanResult> {
  const out: ScanResult[] = [];
  for (const ids of sizes) {
    const proc = Bun.spawn([process.execPath, import.meta.path, "--one", String(ids)], { stdout: "pipe", stderr: "inherit" });
    const text = await new Response(proc.stdout).text();
    if ((await proc.exited) !== 0) throw new Error(`repair scan of ${ids} ids failed`);
    out.push(JSON.parse(text) as ScanResult);
  }
  return { sizes: out, growth: out[out.length - 1].nsPerChunk / out[0].nsPerChunk };
}

/** One line per size, for people. */
export function describeScan(r: ScanResult): string {
  return `repair scan of ${r.ids.toLocaleString("en")} ids: ${(r.ms / 1000).toFixed(2)} s, ${r.nsPerChunk.toFixed(0)} ns per chunk (listing ${r.listNsPerChunk.toFixed(0)}), ${r.steps} steps, peak heap +${r.peakHeapDeltaMB.toFixed(1)} MB, peak RSS +${r.peakRssDeltaMB.toFixed(1)} MB`;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { one: { type: "string" }, sizes: { type: "string" } } });
  if (values.one) {
    console.log(JSON.stringify(await scanOnce(Number(values.one))));
  } else {
    const r = await measureRepairScan(values.sizes ? values.sizes.split(",").map(Number) : DEFAULT_SIZES);
    for (const s of r.sizes) console.log(describeScan(s));
    const verdict = r.growth <= 1.5 ? "met" : "MISSED";
    console.log(`per-chunk cost at ${r.sizes.at(-1)!.ids.toLocaleString("en")} / at ${r.sizes[0].ids.toLocaleString("en")}: ${r.growth.toFixed(2)}x (target ≤ 1.5x: ${verdict})`);
  }
}
