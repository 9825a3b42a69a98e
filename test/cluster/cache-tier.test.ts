// The cache tier on a real 4-peer mesh at RF 3 (issue 15, item 4): every peer lacks some of
// a multi-chunk object's chunks, so reading it through the peer that lacks the most fetches
// them from the others once; the second read costs no chunk fetch (a multi-chunk object: the
// disk tier, and a read after that peer restarts costs none either; a one-chunk object: the
// memory tier). An overwrite or delete through another peer is seen at once.
// /cluster/status and /metrics show the hit ratios.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { json, md5Hex, mustCreateBucket, request, statusAndCode } from "../harness/http.ts";

const CHUNK = 2 * 1024 * 1024;
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startConverged(4, { config: { chunkSize: CHUNK, cacheDiskBytes: 64 * 1024 * 1024 } });
  await mustCreateBucket(url(0), "hot");
});
afterAll(async () => {
  await teardownCluster(cluster);
});

const url = (i: number) => cluster.peer(i).httpUrl;
const chunkGets = (i: number) => cluster.peer(i).testHooks.rpcCounters.sent.get("chunk.get") ?? 0;
const put = async (i: number, key: string, body: Uint8Array) => expect(statusAndCode(await request(url(i), "PUT", `/buckets/hot/objects/${key}`, { body }))).toBe("200");
/** Read through peer i: the body's md5 and the chunk.get calls the read sent to other peers. */
async function readThrough(i: number, key: string): Promise<{ md5: string; fetched: number }> {
  const before = chunkGets(i);
  const r = await request(url(i), "GET", `/buckets/hot/objects/${key}`);
  expect(r.status).toBe(200);
  return { md5: md5Hex(r.body), fetched: chunkGets(i) - before };
}
/** The peer holding the fewest of the object's chunks, and how many it lacks. */
async function leastHolder(key: string): Promise<{ peer: number; lacks: number }> {
  const where = json<{ chunks: Array<{ holders: string[] }> }>(await request(url(0), "GET", `/cluster/locate/hot/${key}`));
  const lacks = [0, 1, 2, 3].map((i) => where.chunks.filter((c) => !c.holders.includes(cluster.peer(i).peerId)).length);
  const peer = lacks.indexOf(Math.max(...lacks));
  return { peer, lacks: lacks[peer] };
}

test("a multi-chunk object read twice through a peer lacking its chunks is fetched from the others once (disk tier, across a restart)", async () => {
  const body = crypto.getRandomValues(new Uint8Array(8 * CHUNK));
  await put(0, "big.bin", body);
  const { peer, lacks } = await leastHolder("big.bin");
  expect(lacks).toBeGreaterThan(0);
  const first = await readThrough(peer, "big.bin");
  expect(first).toEqual({ md5: md5Hex(body), fetched: lacks });
  const second = await readThrough(peer, "big.bin");
  expect(second).toEqual({ md5: md5Hex(body), fetched: 0 });
  const status = json(await request(url(peer), "GET", "/cluster/status"));
  expect(status.cache.disk).toMatchObject({ hits: lacks, misses: lacks, hitRatio: 0.5, corrupt: 0, maxBytes: 64 * 1024 * 1024 });
  expect(status.cache.disk.bytes).toBe(lacks * CHUNK);
  // A large object's chunks stay out of the memory tier (it is for small objects).
  expect(status.cache.memory).toMatchObject({ bytes: 0, entries: 0, hits: 0, misses: 0 });

  // The disk tier survives a restart: the object still costs no fetch through that peer.
  await cluster.restart(peer);
  await cluster.waitFor("all 4 alive everywhere after the restart", () => cluster.allSee([0, 1, 2, 3], [0, 1, 2, 3], "alive"), 15_000);
  const afterRestart = await readThrough(peer, "big.bin");
  expect(afterRestart).toEqual({ md5: md5Hex(body), fetched: 0 });
  expect(json(await request(url(peer), "GET", "/cluster/status")).cache.disk).toMatchObject({ hits: lacks, misses: 0 });
}, 30_000);

test("a small object is served from memory the second time, and an overwrite or delete through another peer is seen at once", async () => {
  const v1 = crypto.getRandomValues(new Uint8Array(300 * 1024));
  await put(1, "small.bin", v1);
  // A one-chunk object: some peer holds no copy of it.
  const { peer, lacks } = await leastHolder("small.bin");
  expect(lacks).toBe(1);
  const other = (peer + 1) % 4;
  const memBefore = json(await request(url(peer), "GET", "/cluster/status")).cache.memory;
  expect(await readThrough(peer, "small.bin")).toEqual({ md5: md5Hex(v1), fetched: 1 });
  expect(await readThrough(peer, "small.bin")).toEqual({ md5: md5Hex(v1), fetched: 0 });
  const mem = json(await request(url(peer), "GET", "/cluster/status")).cache.memory;
  expect(mem.hits - memBefore.hits).toBe(1);
  expect(mem.bytes).toBeGreaterThanOrEqual(v1.byteLength);
  // --cache-memory (64 MiB): an eighth for manifests, the rest for chunks.
  expect(mem.maxBytes).toBe(56 * 1024 * 1024);

  // Manifests are cached under leases: the overwrite through another peer is what the next read sees.
  const v2 = crypto.getRandomValues(new Uint8Array(300 * 1024));
  await put(other, "small.bin", v2);
  expect((await readThrough(peer, "small.bin")).md5).toBe(md5Hex(v2));
  expect(statusAndCode(await request(url(other), "DELETE", "/buckets/hot/objects/small.bin"))).toBe("204");
  expect(statusAndCode(await request(url(peer), "GET", "/buckets/hot/objects/small.bin"))).toBe("404 NoSuchKey");

  const metrics = new TextDecoder().decode((await request(url(peer), "GET", "/metrics")).body);
  expect(metrics).toMatch(/meshstore_cache_lookups_total\{tier="memory",result="hit"\} [1-9]/);
  expect(metrics).toMatch(/meshstore_cache_bytes\{tier="disk",kind="max"\} 67108864/);
});
