// What the dashboard's "Recent uploads" refresh costs: on 3 in-process peers, make a few
// hundred upload records (small native PUTs, 1 in 10 abandoned mid-body so it fails),
// then time GET /uploads?limit=20 (and ?limit=200) on each peer with the admin token.
import { startConverged, teardownCluster } from "../test/harness/cluster.ts";
import { ADMIN_BEARER } from "../test/harness/credentials.ts";
import { mustCreateBucket, rawRequest } from "../test/harness/http.ts";
import { percentile } from "./stats.ts";

const RECORDS = Number(process.argv[2] ?? 300);
const ROUNDS = 50;

const cluster = await startConverged(3);
try {
  const http = (i: number) => cluster.peer(i).httpUrl;
  await mustCreateBucket(http(0), "records");
  const t0 = performance.now();
  for (let i = 0; i < RECORDS; i += 16) {
    await Promise.all(
      Array.from({ length: Math.min(16, RECORDS - i) }, async (_, j) => {
        const n = i + j;
        if (n % 10 === 9) {
          const head = `PUT /buckets/records/objects/gone-${n} HTTP/1.1\r\nHost: x\r\nAuthorization: ${ADMIN_BEARER}\r\nx-upload-token: gone-${String(n).padStart(6, "0")}\r\nContent-Length: 100000\r\n\r\n`;
          return rawRequest(http(n % 3), head, new Uint8Array(1000), "abort");
        }
        const res = await fetch(`${http(n % 3)}/buckets/records/objects/k-${n}`, { method: "PUT", body: `body ${n}`, headers: { authorization: ADMIN_BEARER } });
        if (!res.ok) throw new Error(`PUT ${n}: ${res.status}`);
      }),
    );
  }
  console.log(`${RECORDS} uploads in ${Math.round(performance.now() - t0)} ms`);
  for (const limit of [20, 200]) {
    for (let i = 0; i < 3; i++) {
      const times: number[] = [];
      let count = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const s = performance.now();
        const res = await fetch(`${http(i)}/uploads?limit=${limit}`, { headers: { authorization: ADMIN_BEARER } });
        count = ((await res.json()) as { uploads: unknown[] }).uploads.length;
        times.push(performance.now() - s);
      }
      console.log(`GET /uploads?limit=${limit} on peer ${i}: ${count} records, p50 ${percentile(times, 0.5).toFixed(1)} ms, p99 ${percentile(times, 0.99).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms (${ROUNDS} calls)`);
    }
  }
} finally {
  await teardownCluster(cluster);
}
