// Search (issue 14) on a mesh of separate `bun run node` peers, as bench/run.ts drives its
// mesh: N small objects (16-64 bytes) carrying five typed fields, written 64 at a time
// through all peers into a bucket with a schema (the fill: indexed small-PUT throughput),
// alternating slice by slice with the same PUTs into a bucket without one (unindexed
// throughput), so both meet the same LevelDB sizes and compactions. Then timed queries,
// each answer checked against what the data says it must be:
//  - selective: `year = Y and draft = true` (about 0.1%) and `tags = "rare"` (about 0.3%),
//    first page (limit 100), through each peer in turn;
//  - range: `year >= A and year < A+10` sorted by year, one page of 1,000.
// Unindexed figures beside them: the same selective set found by a full scan (the bucket
// without a schema, by a contentType condition that spells year and draft: no index holds
// contentType there, so the replicas read every manifest), and a key-ordered listing page
// of 1,000 (GET /objects), the mesh's own cost of paging 1,000 objects.
//   bun bench/search.ts [--objects 100000] [--peers 3]   (or SEARCH_OBJECTS=10000)
import os from "node:os";
import { parseArgs } from "node:util";
import { ADMIN_BEARER } from "../test/harness/credentials.ts";
import { timePages } from "./list-latency.ts";
import { createBucket, keyOf, objectUrl, opsResult, type OpsResult } from "./load.ts";
import { startMesh } from "./mesh.ts";
import { judge, log, percentile, pool, type Row } from "./stats.ts";

const SCHEMA = { fields: { year: "number", released: "date", title: "string", draft: "bool", tags: "keywords" } };
const INFLIGHT = 64;
const SLICES = 10;
const YEARS = 100;
const FIRST_YEAR = 1950;
const SELECTIVE_RUNS = 50;
const RANGE_RUNS = 30;
const SCAN_RUNS = 5;

/** What object i carries: deterministic, so every answer can be checked. Warm-up objects (negative i) match no timed query. */
export function objectOf(i: number) {
  if (i < 0) return { key: `w/${-i}`, size: 16, year: 1900, draft: false, tags: ["warm"], released: "1900-01-01T00:00:00.000Z", title: "warm", contentType: "application/x-warm" };
  let h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  h = (h ^ (h >>> 16)) >>> 0;
  const year = FIRST_YEAR + (h % YEARS);
  const draft = (h >>> 8) % 10 === 0;
  const tags = [`t${(h >>> 12) % 32}`, `t${(h >>> 17) % 32}`];
  if (i % 300 === 7) tags.push("rare");
  return {
    key: keyOf("s/", i),
    size: 16 + (i % 49),
    year,
    draft,
    tags,
    released: new Date(Date.UTC(year, (h >>> 20) % 12, 1 + ((h >>> 24) % 28))).toISOString(),
    title: `Title ${(h >>> 4) % 1000} of ${i}`,
    // The same selection as year and draft, readable without a schema (the full-scan reference).
    contentType: `application/x-y${year}${draft ? "-draft" : ""}`,
  };
}

export interface Latency {
  runs: number;
  p50ms: number;
  p95ms: number;
  maxms: number;
}
const latency = (xs: number[]): Latency => ({ runs: xs.length, p50ms: percentile(xs, 0.5), p95ms: percentile(xs, 0.95), maxms: Math.max(...xs) });

export interface SearchResult {
  objects: number;
  peers: number;
  indexedPut: OpsResult;
  plainPut: OpsResult;
  /** Index ready on every peer this long after the fill's last PUT. */
  readyAfterFillMs: number;
  selective: Latency & { query: string; matches: number; share: number };
  rare: Latency & { query: string; matches: number; share: number };
  fullScan: Latency & { query: string; matches: number; pages: number };
  range: Latency & { query: string; inRange: number };
  list: { pages: number; p50ms: number; maxms: number };
}

interface Found {
  key: string;
  meta: Record<string, string>;
}
type Page = { objects: Found[]; nextCursor: string | null };

async function query(base: string, bucket: string, body: object): Promise<Page> {
  const res = await fetch(`${base}/buckets/${bucket}/query`, { method: "POST", headers: { authorization: ADMIN_BEARER, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`query ${JSON.stringify(body)} on ${bucket}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Page;
}

async function schemaState(base: string, bucket: string): Promise<string> {
  const res = await fetch(`${base}/buckets/${bucket}/schema`, { headers: { authorization: ADMIN_BEARER } });
  if (!res.ok) throw new Error(`GET schema: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { state: string }).state;
}

async function waitReady(targets: string[], bucket: string): Promise<void> {
  const t0 = performance.now();
  while ((await Promise.all(targets.map((t) => schemaState(t, bucket)))).some((s) => s !== "ready")) {
    if (performance.now() - t0 > 300_000) throw new Error(`schema of ${bucket} not ready after 300 s`);
    await Bun.sleep(100);
  }
}

/** PUT objects [from, to) into `bucket`, INFLIGHT at a time through the targets in turn; the latencies go to `lat`. */
async function fill(targets: string[], bucket: string, from: number, to: number, lat: number[]): Promise<number> {
  const t0 = performance.now();
  await pool(from, to, INFLIGHT, async (i) => {
    const o = objectOf(i);
    const headers = {
      authorization: ADMIN_BEARER,
      "content-type": o.contentType,
      "x-meta-year": String(o.year),
      "x-meta-released": o.released,
      "x-meta-title": o.title,
      "x-meta-draft": String(o.draft),
      "x-meta-tags": o.tags.join(","),
    };
    const s = performance.now();
    const res = await fetch(objectUrl(targets[Math.abs(i) % targets.length], bucket, o.key), { method: "PUT", body: new Uint8Array(o.size).fill(i & 0xff), headers });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`PUT ${i} into ${bucket}: ${res.status}`);
    lat.push(performance.now() - s);
  });
  return (performance.now() - t0) / 1000;
}

/** Every page of a query, following cursors; returns the objects and the page count. */
async function queryAll(base: string, bucket: string, body: object, stopAt = Infinity): Promise<{ objects: Found[]; pages: number }> {
  const objects: Found[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await query(base, bucket, cursor ? { ...body, cursor } : body);
    objects.push(...page.objects);
    pages++;
    cursor = page.nextCursor;
  } while (cursor && objects.length < stopAt);
  return { objects, pages };
}

const sameKeys = (got: Found[], want: string[], what: string) => {
  const a = got.map((o) => o.key).sort();
  const b = [...want].sort();
  if (a.length !== b.length || a.some((k, i) => k !== b[i])) throw new Error(`${what}: ${a.length} keys answered, ${b.length} expected, or different keys`);
};

/** Fill `indexed` (with a schema) and `plain` (without), alternating, and time the queries. */
export async function measureSearch(targets: string[], n: number): Promise<SearchResult> {
  const all = Array.from({ length: n }, (_, i) => objectOf(i));
  await createBucket(targets[0], "indexed");
  await createBucket(targets[0], "plain");
  const put = await fetch(`${targets[0]}/buckets/indexed/schema`, { method: "PUT", headers: { authorization: ADMIN_BEARER }, body: JSON.stringify(SCHEMA) });
  if (!put.ok) throw new Error(`PUT schema: ${put.status} ${await put.text()}`);
  await waitReady(targets, "indexed");

  // Untimed warm-up in both buckets (outside every timed query's range): the first timed slice should not pay for a cold JIT.
  const warm = Math.min(2000, Math.ceil(n / 20));
  for (const b of ["indexed", "plain"]) await fill(targets, b, -warm, 0, []);

  // Slices ABBA: which bucket goes first alternates, so neither always meets a fresher LevelDB.
  const lat = { indexed: [] as number[], plain: [] as number[] };
  const secs = { indexed: 0, plain: 0 };
  const slice = Math.ceil(n / SLICES);
  for (let s = 0; s < SLICES; s++) {
    const [from, to] = [s * slice, Math.min(n, (s + 1) * slice)];
    for (const b of s % 2 === 0 ? (["indexed", "plain"] as const) : (["plain", "indexed"] as const)) secs[b] += await fill(targets, b, from, to, lat[b]);
    log(`search: ${to} of ${n} objects in each bucket: indexed ${(lat.indexed.length / secs.indexed).toFixed(0)} PUT/s, without schema ${(lat.plain.length / secs.plain).toFixed(0)} PUT/s so far`);
  }
  const filled = performance.now();
  await waitReady(targets, "indexed");
  const readyAfterFillMs = performance.now() - filled;

  // Selective: year = Y and draft = true, Y varying, first page of 100, each peer in turn.
  const selectiveTimes: number[] = [];
  let selectiveMatches = 0;
  for (let r = 0; r < SELECTIVE_RUNS; r++) {
    const year = FIRST_YEAR + ((r * 37) % YEARS);
    const want = all.filter((o) => o.year === year && o.draft).map((o) => o.key);
    const t0 = performance.now();
    const page = await query(targets[r % targets.length], "indexed", { where: [{ field: "year", op: "=", value: year }, { field: "draft", op: "=", value: true }], limit: 100 });
    selectiveTimes.push(performance.now() - t0);
    if (want.length <= 100) sameKeys(page.objects, want, `year = ${year} and draft = true`);
    else if (page.objects.length !== 100) throw new Error(`year = ${year} and draft = true: ${page.objects.length} on the first page`);
    selectiveMatches += want.length;
  }
  selectiveMatches /= SELECTIVE_RUNS;
  // One query followed to its end: the whole answer is what the data says.
  const y0 = FIRST_YEAR;
  sameKeys((await queryAll(targets[0], "indexed", { where: [{ field: "year", op: "=", value: y0 }, { field: "draft", op: "=", value: true }], limit: 100 })).objects, all.filter((o) => o.year === y0 && o.draft).map((o) => o.key), "every page of the selective query");

  const rareWant = all.filter((o) => o.tags.includes("rare")).map((o) => o.key);
  const rareTimes: number[] = [];
  for (let r = 0; r < SELECTIVE_RUNS; r++) {
    const t0 = performance.now();
    const page = await query(targets[r % targets.length], "indexed", { where: [{ field: "tags", op: "=", value: "rare" }], limit: 100 });
    rareTimes.push(performance.now() - t0);
    if (page.objects.length !== Math.min(100, rareWant.length)) throw new Error(`tags = rare: ${page.objects.length} on the first page`);
  }
  sameKeys((await queryAll(targets[0], "indexed", { where: [{ field: "tags", op: "=", value: "rare" }], limit: 1000 })).objects, rareWant, "every page of tags = rare");

  // Range sorted by year: one page of 1,000 from a 10-year window (about 10% of the objects).
  const rangeTimes: number[] = [];
  let inRange = 0;
  for (let r = 0; r < RANGE_RUNS; r++) {
    const from = FIRST_YEAR + ((r * 13) % (YEARS - 10));
    const t0 = performance.now();
    const page = await query(targets[r % targets.length], "indexed", { where: [{ field: "year", op: ">=", value: from }, { field: "year", op: "<", value: from + 10 }], sort: { field: "year", order: "asc" }, limit: 1000 });
    rangeTimes.push(performance.now() - t0);
    const want = all.filter((o) => o.year >= from && o.year < from + 10);
    inRange += want.length;
    const years = page.objects.map((o) => Number(o.meta.year));
    if (page.objects.length !== Math.min(1000, want.length)) throw new Error(`range from ${from}: ${page.objects.length} objects`);
    if (years.some((y, i) => y < from || y >= from + 10 || (i > 0 && y < years[i - 1]))) throw new Error(`range from ${from}: out of range or out of order`);
    // Every object of the smallest years in range must be there before any later year.
    const last = years[years.length - 1];
    const below = want.filter((o) => o.year < last).length;
    if (years.filter((y) => y < last).length !== below) throw new Error(`range from ${from}: missed objects below year ${last}`);
  }
  inRange /= RANGE_RUNS;

  // Unindexed: the selective set by a full scan of the bucket without a schema. No index
  // answers a contentType condition there, so every replica walks its manifests in key
  // order (the answer is checked).
  const scanTimes: number[] = [];
  let scanMatches = 0;
  let scanPages = 0;
  for (let r = 0; r < SCAN_RUNS; r++) {
    const year = FIRST_YEAR + ((r * 37) % YEARS);
    const want = all.filter((o) => o.year === year && o.draft).map((o) => o.key);
    const t0 = performance.now();
    const got = await queryAll(targets[r % targets.length], "plain", { where: [{ field: "contentType", op: "=", value: `application/x-y${year}-draft` }], limit: 100 }, 100);
    scanTimes.push(performance.now() - t0);
    if (want.length <= 100) sameKeys(got.objects, want, `full scan for year ${year}`);
    scanMatches += want.length;
    scanPages += got.pages;
  }

  const list = await timePages(targets[0], "indexed", n + warm);
  return {
    objects: n,
    peers: targets.length,
    indexedPut: opsResult(lat.indexed, secs.indexed),
    plainPut: opsResult(lat.plain, secs.plain),
    readyAfterFillMs,
    selective: { ...latency(selectiveTimes), query: "year = Y and draft = true, limit 100", matches: selectiveMatches, share: selectiveMatches / n },
    rare: { ...latency(rareTimes), query: 'tags = "rare", limit 100', matches: rareWant.length, share: rareWant.length / n },
    fullScan: { ...latency(scanTimes), query: 'contentType = "application/x-yY-draft" on the bucket without a schema, until 100 or the end', matches: scanMatches / SCAN_RUNS, pages: scanPages / SCAN_RUNS },
    range: { ...latency(rangeTimes), query: "year >= A and year < A+10 sort year, limit 1000", inRange },
    list,
  };
}

/** The rows of run.ts's table: figure, value, the unindexed figure beside it, ratio, target (the bar is for 100,000 objects). */
export function searchRows(r: SearchResult): Row[] {
  const f0 = (n: number) => n.toLocaleString("en", { maximumFractionDigits: 0 });
  const f1 = (n: number) => n.toFixed(1);
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;
  const forSize = r.objects >= 100_000 ? "" : " (target is for 100k)";
  const lat = (l: Latency) => `${f1(l.p50ms)} (${f1(l.p95ms)})`;
  const share = (x: number) => `${(100 * x).toFixed(2)}%`;
  return [
    {
      figure: `search: small PUT ops/s (p50 / p99 ms) into a bucket with 5 indexed fields, ${f0(r.objects)}×16-64 B, ${INFLIGHT} in flight`,
      value: `${f0(r.indexedPut.opsPerSec)} (${f1(r.indexedPut.p50ms)} / ${f1(r.indexedPut.p99ms)})`,
      limit: `same PUTs, bucket without schema ${f0(r.plainPut.opsPerSec)}/s (${f1(r.plainPut.p50ms)} / ${f1(r.plainPut.p99ms)})`,
      ratio: pct(r.indexedPut.opsPerSec, r.plainPut.opsPerSec),
      target: judge([[(100 * r.indexedPut.opsPerSec) / r.plainPut.opsPerSec, { op: ">=", value: 80, unit: "% of without schema" }]]) + forSize,
    },
    {
      figure: `search: selective query first page p50 ms (p95), ${r.selective.query}, ${f0(r.selective.matches)} matches (${share(r.selective.share)})`,
      value: lat(r.selective),
      limit: `full scan, no schema: ${lat(r.fullScan)} (${f1(r.fullScan.pages)} pages)`,
      ratio: pct(r.selective.p50ms, r.fullScan.p50ms),
      target: judge([[r.selective.p50ms, { op: "<", value: 50, unit: " ms" }]]) + forSize,
    },
    {
      figure: `search: selective query first page p50 ms (p95), ${r.rare.query}, ${f0(r.rare.matches)} matches (${share(r.rare.share)})`,
      value: lat(r.rare),
      limit: "—",
      ratio: "—",
      target: judge([[r.rare.p50ms, { op: "<", value: 50, unit: " ms" }]]) + forSize,
    },
    {
      figure: `search: range query sorted by number, one page of 1,000, p50 ms (p95), ${r.range.query} (${f0(r.range.inRange)} in range)`,
      value: lat(r.range),
      limit: `list 1,000-key page p50 ${f1(r.list.p50ms)} (max ${f1(r.list.maxms)})`,
      ratio: pct(r.range.p50ms, r.list.p50ms),
      target: judge([[r.range.p50ms, { op: "<", value: 100, unit: " ms" }]]) + forSize,
    },
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { objects: { type: "string", default: process.env.SEARCH_OBJECTS ?? "100000" }, peers: { type: "string", default: "3" } } });
  const n = Number(values.objects);
  const startedAt = performance.now();
  log(`search: ${values.peers} peers, ${n} objects with five typed fields, and as many without a schema`);
  const mesh = await startMesh(Number(values.peers));
  let r: SearchResult;
  try {
    r = await measureSearch(mesh.peers.map((p) => p.http), n);
  } finally {
    mesh.close();
  }
  console.log(`\nmeshstore search bench: ${values.peers} peers, RF=3, ${os.cpus()[0]?.model ?? "unknown"}, ${os.cpus().length} cores, Bun ${Bun.version}, ${((performance.now() - startedAt) / 1000).toFixed(0)} s; index ready ${r.readyAfterFillMs.toFixed(0)} ms after the fill\n`);
  console.log("| figure | value | unindexed | ratio | target |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const row of searchRows(r)) console.log(`| ${row.figure} | ${row.value} | ${row.limit} | ${row.ratio} | ${row.target} |`);
  process.exit(0);
}
