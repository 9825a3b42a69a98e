// Hot manifests under read leases on a real 4-peer mesh at RF 3 (issue 15, item 4;
// src/cache/manifest-leases.ts): repeated reads of one object through a peer cost no
// index read while the lease runs; an overwrite or delete acknowledged through any peer
// is seen at once through every peer (checked round by round, and as a history of
// concurrent reads against one writer); a holder the replicas cannot reach holds an
// overwrite back until its lease has run out, and never serves the old object after it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, mustCreateBucket, request, statusAndCode } from "../harness/http.ts";
import { LEASE_MS } from "../../src/cache/manifest-leases.ts";

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startConverged(4, { topology: "star" });
  await mustCreateBucket(url(0), "hot");
});
afterAll(async () => {
  await teardownCluster(cluster);
});

const url = (i: number) => cluster.peer(i).httpUrl;
const indexReads = (i: number) => cluster.peer(i).testHooks.rpcCounters.sent.get("index.getBatch") ?? 0;
const put = async (i: number, key: string, body: string) => expect(statusAndCode(await request(url(i), "PUT", `/buckets/hot/objects/${key}`, { body }))).toBe("200");
/** The body read through peer i, or null for a 404. */
async function read(i: number, key: string): Promise<string | null> {
  const r = await request(url(i), "GET", `/buckets/hot/objects/${key}`);
  if (r.status === 404) return null;
  if (r.status !== 200) throw new Error(`GET ${key} through peer ${i}: ${r.status} ${new TextDecoder().decode(r.body).slice(0, 200)}`);
  return new TextDecoder().decode(r.body);
}
const pick = (n: number) => Math.floor(cluster.random() * n);

test("a hot object read 40 times through one peer costs one quorum read per lease; status and metrics show the hits", async () => {
  await put(1, "hot.txt", "hello");
  expect(await read(3, "hot.txt")).toBe("hello");
  const before = indexReads(3);
  for (let i = 0; i < 40; i++) expect(await read(3, "hot.txt")).toBe("hello");
  // Within one lease (3 s) the 40 reads send no index read at all; a slow machine may see one lease end.
  expect(indexReads(3) - before).toBeLessThanOrEqual(3);
  const status = json<{ cache: { manifests: { hits: number; entries: number; maxBytes: number } } }>(await request(url(3), "GET", "/cluster/status"));
  expect(status.cache.manifests.hits).toBeGreaterThanOrEqual(37);
  expect(status.cache.manifests.maxBytes).toBe(8 * 1024 * 1024);
  const metrics = new TextDecoder().decode((await request(url(3), "GET", "/metrics")).body);
  expect(metrics).toMatch(/meshstore_cache_lookups_total\{tier="manifests",result="hit"\} (\d+)/);
});

test("100 rounds: every peer holds the object cached, one random peer overwrites or deletes it, and every peer then reads the new state", async () => {
  let expected: string | null = "start";
  await put(0, "round", "start");
  for (let round = 0; round < 100; round++) {
    for (let i = 0; i < 4; i++) expect(await read(i, "round")).toBe(expected);
    const writer = pick(4);
    if (cluster.random() < 0.2) {
      expect(statusAndCode(await request(url(writer), "DELETE", "/buckets/hot/objects/round"))).toBe("204");
      expected = null;
    } else {
      expected = `v${round}`;
      await put(writer, "round", expected);
    }
    for (let i = 0; i < 4; i++) expect(await read(i, "round")).toBe(expected);
  }
  const hits = json<{ cache: { manifests: { hits: number } } }>(await request(url(0), "GET", "/cluster/status")).cache.manifests.hits;
  expect(hits).toBeGreaterThan(50);
});

test("one writer, readers through every peer at once: no read that starts after an acknowledgement returns anything older", async () => {
  await put(0, "counter", "0");
  const acked: number[] = [0]; // acked[v] = when version v was acknowledged
  const reads: Array<{ start: number; end: number; v: number }> = [];
  let writing = true;
  const writer = (async () => {
    for (let v = 1; v <= 120; v++) {
      await put(pick(4), "counter", String(v));
      acked[v] = performance.now();
    }
    writing = false;
  })();
  const readers = [0, 1, 2, 3].map(async (i) => {
    while (writing) {
      const start = performance.now();
      const body = await read(i, "counter");
      reads.push({ start, end: performance.now(), v: Number(body) });
    }
  });
  await Promise.all([writer, ...readers]);
  expect(reads.length).toBeGreaterThan(120);
  for (const r of reads) {
    let floor = 0;
    for (let v = 0; v < acked.length; v++) if (acked[v] < r.start) floor = v;
    if (r.v < floor) throw new Error(`a read started ${Math.round(r.start - acked[floor])} ms after version ${floor} was acknowledged returned version ${r.v}`);
  }
});

test("a holder cut off from the replicas holds an overwrite back until its lease runs out, and never serves the old object after", async () => {
  const key = "cut.txt";
  await put(0, key, "old");
  const where = json<{ shard: { replicas: string[] } }>(await request(url(0), "GET", `/cluster/locate/hot/${key}`));
  const holder = [0, 1, 2, 3].find((i) => !where.shard.replicas.includes(cluster.peer(i).peerId));
  if (holder === undefined) throw new Error("every peer replicates the shard: expected exactly three of four to");
  const writer = [0, 1, 2, 3].find((i) => i !== holder)!;
  const leasedAt = performance.now(); // the replicas grant the lease after this
  expect(await read(holder, key)).toBe("old");
  expect(await read(holder, key)).toBe("old"); // from the cache
  const others = [0, 1, 2, 3].filter((i) => i !== holder).map((i) => cluster.peer(i).peerId);
  await cluster.peer(holder).testHooks.partition(others);
  for (const i of [0, 1, 2, 3].filter((i) => i !== holder)) await cluster.peer(i).testHooks.partition([cluster.peer(holder).peerId]);
  try {
    await put(writer, key, "new");
    const heldFor = performance.now() - leasedAt;
    // The replicas could not tell the holder: the acknowledgement waited for its lease to end.
    expect(heldFor).toBeGreaterThanOrEqual(LEASE_MS - 300);
    // Cut off, the holder may fail the read, but it must not answer with the old object.
    const r = await request(url(holder), "GET", `/buckets/hot/objects/${key}`);
    expect(r.status === 200 ? new TextDecoder().decode(r.body) : "no answer").not.toBe("old");
  } finally {
    for (const i of [0, 1, 2, 3]) await cluster.peer(i).testHooks.partition([]);
  }
  await cluster.waitFor("the holder reads the overwrite once healed", async () => (await read(holder, key).catch(() => null)) === "new", 15_000);
});
