// HTTP load against a set of base URLs (peers of a mesh, or the ceiling server): large
// objects (MB/s) and small objects (ops/s with per-request latency). Object i goes
// through targets[i % targets.length]. Keys are deterministic, so a GET run reads back
// what the PUT run with the same prefix wrote.
import { ADMIN_BEARER } from "../test/harness/credentials.ts";
import { mbps, percentile, pool } from "./stats.ts";

const CHUNK = 4 * 1024 * 1024; // the mesh's chunk size: stamp each chunk so none dedupe
const RUN = crypto.getRandomValues(new Uint32Array(1))[0];

export const objectUrl = (base: string, bucket: string, key: string) => `${base}/buckets/${bucket}/objects/${encodeURIComponent(key)}`;

/** Keys spread through the key space (so inserts land in random order), unique per index. */
export const keyOf = (prefix: string, i: number) => `${prefix}${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, "0")}-${i}`;

export async function createBucket(base: string, bucket: string): Promise<void> {
  const res = await fetch(`${base}/buckets/${bucket}`, { method: "PUT", headers: { authorization: ADMIN_BEARER } });
  if (!res.ok) throw new Error(`create bucket ${bucket}: ${res.status} ${await res.text()}`);
}

export interface LargeOpts {
  count: number;
  size: number;
  inflight: number;
  prefix?: string;
}
export interface RateResult {
  bytes: number;
  secs: number;
  MBps: number;
}

/** PUT `count` objects of `size` bytes, `inflight` at a time; every 4 MiB chunk is distinct. */
export async function putLarge(targets: string[], bucket: string, o: LargeOpts): Promise<RateResult> {
  const slots = Array.from({ length: Math.min(o.inflight, o.count) }, () => {
    const b = new Uint8Array(o.size);
    crypto.getRandomValues(b.subarray(0, Math.min(65536, o.size)));
    for (let off = 65536; off < o.size; off *= 2) b.copyWithin(off, 0, off);
    return b;
  });
  let free = [...slots];
  const t0 = performance.now();
  await pool(0, o.count, o.inflight, async (i) => {
    const body = free.pop()!;
    const dv = new DataView(body.buffer);
    for (let off = 0; off + 12 <= o.size; off += CHUNK) {
      dv.setUint32(off, RUN);
      dv.setUint32(off + 4, i);
      dv.setUint32(off + 8, off / CHUNK);
    }
    const res = await fetch(objectUrl(targets[i % targets.length], bucket, keyOf(o.prefix ?? "big/", i)), { method: "PUT", body, headers: { authorization: ADMIN_BEARER } });
    if (!res.ok) throw new Error(`PUT ${i}: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    free.push(body);
  });
  const secs = (performance.now() - t0) / 1000;
  free = [];
  return { bytes: o.count * o.size, secs, MBps: mbps(o.count * o.size, secs) };
}

/** GET the objects `putLarge` wrote, streaming and counting the bytes. */
export async function getLarge(targets: string[], bucket: string, o: LargeOpts): Promise<RateResult> {
  const t0 = performance.now();
  let total = 0;
  await pool(0, o.count, o.inflight, async (i) => {
    const res = await fetch(objectUrl(targets[i % targets.length], bucket, keyOf(o.prefix ?? "big/", i)), { headers: { authorization: ADMIN_BEARER } });
    if (!res.ok || !res.body) throw new Error(`GET ${i}: ${res.status} ${await res.text()}`);
    let n = 0;
    for await (const piece of res.body) n += piece.byteLength;
    if (n !== o.size) throw new Error(`GET ${i}: ${n} bytes, expected ${o.size}`);
    total += n;
  });
  const secs = (performance.now() - t0) / 1000;
  return { bytes: total, secs, MBps: mbps(total, secs) };
}

export interface OpsResult {
  ops: number;
  secs: number;
  opsPerSec: number;
  p50ms: number;
  p99ms: number;
  maxms: number;
}

/** Rate and latency percentiles of `lat` (ms per op) over `secs`. */
export function opsResult(lat: number[], secs: number): OpsResult {
  return { ops: lat.length, secs, opsPerSec: lat.length / secs, p50ms: percentile(lat, 0.5), p99ms: percentile(lat, 0.99), maxms: Math.max(...lat) };
}

export interface SmallOpts {
  /** Object indexes [from, to). */
  from?: number;
  to: number;
  size: number;
  inflight: number;
  prefix?: string;
  /** Extra request headers (e.g. `If-None-Match: *` for conditional PUTs). */
  headers?: Record<string, string>;
}

/** PUT small objects, timing each request. */
export async function putSmall(targets: string[], bucket: string, o: SmallOpts): Promise<OpsResult> {
  const lat: number[] = [];
  const t0 = performance.now();
  await pool(o.from ?? 0, o.to, o.inflight, async (i) => {
    const body = new Uint8Array(o.size);
    if (o.size >= 8) new DataView(body.buffer).setFloat64(0, i);
    const s = performance.now();
    const res = await fetch(objectUrl(targets[i % targets.length], bucket, keyOf(o.prefix ?? "k/", i)), { method: "PUT", body, headers: { authorization: ADMIN_BEARER, ...o.headers } });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`PUT ${i}: ${res.status}`);
    lat.push(performance.now() - s);
  });
  return opsResult(lat, (performance.now() - t0) / 1000);
}

/** GET the small objects `putSmall` wrote, timing each request. */
export async function getSmall(targets: string[], bucket: string, o: SmallOpts): Promise<OpsResult> {
  const lat: number[] = [];
  const t0 = performance.now();
  await pool(o.from ?? 0, o.to, o.inflight, async (i) => {
    const s = performance.now();
    const res = await fetch(objectUrl(targets[(i + 1) % targets.length], bucket, keyOf(o.prefix ?? "k/", i)), { headers: { authorization: ADMIN_BEARER } });
    const b = await res.arrayBuffer();
    if (!res.ok || b.byteLength !== o.size) throw new Error(`GET ${i}: ${res.status}, ${b.byteLength} bytes`);
    lat.push(performance.now() - s);
  });
  return opsResult(lat, (performance.now() - t0) / 1000);
}
