// `npx -y bun bench/small-put.ts`: what a small PUT costs on a 3-peer in-process mesh
// (test/harness/cluster.ts): 1 KiB PUTs through the native API, 500 one after another and
// 500 with 16 in flight; prints latency percentiles and throughput. Used to weigh the
// upload progress records' per-PUT cost (README, "Upload tokens").
import { startConverged, teardownCluster } from "../test/harness/cluster.ts";
import { ADMIN_BEARER } from "../test/harness/credentials.ts";

const N = Number(process.env.SMALL_PUT_N ?? 500);
const body = new Uint8Array(1024).fill(7);
const cluster = await startConverged(3);
try {
  const base = cluster.peer(0).httpUrl;
  const auth = { authorization: ADMIN_BEARER };
  await fetch(`${base}/buckets/bench`, { method: "PUT", headers: auth });
  let n = 0;
  const putOne = async () => {
    const t0 = performance.now();
    const r = await fetch(`${base}/buckets/bench/objects/k${n++}`, { method: "PUT", headers: auth, body });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`PUT answered ${r.status}`);
    return performance.now() - t0;
  };
  const run = async (inflight: number) => {
    const times: number[] = [];
    const t0 = performance.now();
    let left = N;
    await Promise.all(Array.from({ length: inflight }, async () => {
      while (left-- > 0) times.push(await putOne());
    }));
    const total = performance.now() - t0;
    times.sort((a, b) => a - b);
    const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
    return `${inflight === 1 ? "sequential " : `${inflight} parallel`}: ${(N / (total / 1000)).toFixed(0)} PUT/s, p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`;
  };
  await run(4); // warm up
  for (let round = 0; round < 2; round++) console.log(`round ${round + 1}: ${await run(1)}; ${await run(16)}`);
} finally {
  await teardownCluster(cluster);
}
