// Listing latency against bucket size, on a mesh of separate `bun run node` processes.
// Fills a bucket with small objects through the HTTP API and times 1,000-key pages.
//   bun bench/list.ts [--sizes 10000,100000] [--peers 3]
import { parseArgs } from "node:util";
import { startMesh } from "./mesh.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "10000,100000" }, peers: { type: "string", default: "3" } } });
const sizes = values.sizes!.split(",").map(Number);
const mesh = await startMesh(Number(values.peers));
const procs = mesh.peers;

try {
  const http = procs[0].http;
  const body = new Uint8Array(100);
  const rows: string[] = [];
  for (const size of sizes) {
    const bucket = `list-${size}`;
    await fetch(`${http}/buckets/${bucket}`, { method: "PUT" });
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < size) {
          const i = next++;
          const key = `k/${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, "0")}-${i}`;
          const res = await fetch(`${procs[i % procs.length].http}/buckets/${bucket}/objects/${encodeURIComponent(key)}`, { method: "PUT", body });
          if (!res.ok) throw new Error(`PUT failed: ${res.status} ${await res.text()}`);
        }
      }),
    );
    const putRate = size / ((performance.now() - started) / 1000);
    // Pages from the start and from cursors spread through the bucket.
    const times: number[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const url = `${http}/buckets/${bucket}/objects?limit=1000${cursor ? `&cursor=${cursor}` : ""}`;
      const t0 = performance.now();
      const res = (await (await fetch(url)).json()) as { objects: unknown[]; nextCursor: string | null };
      times.push(performance.now() - t0);
      if (res.objects.length !== Math.min(1000, size - page * 1000)) throw new Error(`page ${page} had ${res.objects.length} objects`);
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(times.length / 2)];
    const p99 = times[times.length - 1];
    rows.push(`| ${size.toLocaleString("en")} | ${p50.toFixed(1)} | ${p99.toFixed(1)} | ${putRate.toFixed(0)} |`);
  }
  console.log(`\n${procs.length} peers, RF=3, 32 index shards, 100-byte objects\n`);
  console.log("| objects in bucket | 1,000-key page p50 ms | max ms (of 20 pages) | small PUT/s while filling (64 in flight) |");
  console.log("| --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
} finally {
  mesh.close();
}
process.exit(0);
