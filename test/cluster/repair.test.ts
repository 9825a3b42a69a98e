// Self-healing under failure and growth: after a peer dies every chunk and shard goes
// back to 3 live owners; after peers join they take their share with never fewer than 3
// holders; and a mesh that keeps losing and regaining a peer loses no acknowledged write.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { buildRing } from "../../src/placement/ring.ts";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, getObject, locate, mapLimit, mustCreateBucket, mustGet, mustPut, putObject, request, sameBytes, sameSet } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const CHUNK = 256 * 1024;
const BUCKET = "heal";
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);

/** Mixed sizes: inline, one chunk, several chunks. */
function dataset(seed: number, count: number): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const size = [0, 100, 9000, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 7][i % 6];
    out.set(`obj/${String(i).padStart(4, "0")}`, seededBytes(size, seed + i));
  }
  return out;
}

async function writeAll(c: Cluster, data: Map<string, Uint8Array>) {
  const peers = c.running();
  await mapLimit([...data], 16, ([key, body], i) => mustPut(c.peer(peers[i % peers.length]).httpUrl, BUCKET, key, body));
}

/** Every chunk held by exactly its 3 expected owners, all running; every shard on its 3 replicas. */
async function fullyReplicated(c: Cluster, keys: string[]): Promise<boolean> {
  const running = new Set(c.running().map((i) => c.peers[i].id));
  const via = c.peer(c.running()[0]).httpUrl;
  const results = await mapLimit(keys, 8, async (key) => {
    const l = await locate(via, BUCKET, key);
    const chunksOk = l.chunks.every((ch) => ch.holders.length === 3 && sameSet(ch.holders, ch.expected) && ch.holders.every((h) => running.has(h)));
    const shardOk = l.shard.replicas.length === 3 && sameSet(l.shard.holders, l.shard.replicas) && l.shard.replicas.every((r) => running.has(r));
    return chunksOk && shardOk;
  });
  return results.every(Boolean);
}

async function readsBack(c: Cluster, data: Map<string, Uint8Array>) {
  for (const i of c.running()) {
    await mapLimit([...data], 16, async ([key, body]) => {
      const got = await mustGet(c.peer(i).httpUrl, BUCKET, key);
      if (!sameBytes(got, body)) throw new Error(`peer ${i} returned wrong bytes for ${key}`);
    });
  }
}

async function zeroUnderReplicated(c: Cluster): Promise<boolean> {
  for (const i of c.running()) {
    const s = await clusterStatus(c.peer(i).httpUrl);
    if (s.underReplicated.chunks !== 0 || s.underReplicated.shards !== 0) return false;
  }
  return true;
}

describe("self-healing", () => {
  test("5 peers, 200 objects: after one and then a second peer dies, everything is back on 3 live owners", async () => {
    await withCluster(5, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: 1500 } }, async (c) => {
      await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
      await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
      const data = dataset(c.seed, 200);
      await writeAll(c, data);
      const keys = [...data.keys()];
      await c.waitFor("initial replication complete", () => fullyReplicated(c, keys), 30_000, 500);

      for (const [n, victim] of [3, 1].entries()) {
        // A dead member keeps its votes until an operator removes it: with two dead voters a
        // key has no quorum, so the first dead peer is removed before the second dies.
        if (n > 0) expect((await request(c.peer(0).httpUrl, "DELETE", `/admin/members/${c.peers[3].id}`)).status).toBe(200);
        const started = Date.now();
        await c.kill(victim);
        const ms = await c.waitFor(`back at 3 live owners after peer ${victim} died`, () => fullyReplicated(c, keys), 45_000, 500);
        const repaired = (await Promise.all(c.running().map((i) => clusterStatus(c.peer(i).httpUrl)))).reduce((n, s) => n + s.repair.bytesRepaired, 0);
        console.log(`peer ${victim} killed: fully replicated again after ${Date.now() - started} ms (${ms} ms of polling), ${(repaired / 1e6).toFixed(1)} MB repaired so far`);
        await readsBack(c, data);
        await c.waitFor("no under-replication reported", () => zeroUnderReplicated(c), 15_000, 300);
      }
    });
  }, 180_000);

  test("3 peers with data, 2 join: they take their share, never fewer than 3 holders, and nobody keeps what it does not own", async () => {
    await withCluster(3, { topology: "star", config: { chunkSize: CHUNK } }, async (c) => {
      await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
      await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
      const data = dataset(c.seed, 90);
      await writeAll(c, data);
      const keys = [...data.keys()];
      await c.waitFor("initial replication complete", () => fullyReplicated(c, keys), 30_000, 500);

      // Sample holders on disk (independent of any peer's view) while two peers join and data moves.
      const chunkIds = new Set<string>();
      for (const key of keys) for (const ch of (await locate(c.peer(0).httpUrl, BUCKET, key)).chunks) chunkIds.add(ch.id);
      let sampling = true;
      let samples = 0;
      let minHolders = Infinity;
      const sampler = (async () => {
        while (sampling) {
          const onDisk = c.peers.map((p) => new Set(chunkFiles(p.dataDir)));
          for (const id of chunkIds) minHolders = Math.min(minHolders, onDisk.filter((set) => set.has(id)).length);
          samples++;
          await Bun.sleep(20);
        }
      })();
      await c.add(0);
      await c.add(1);
      const all = c.running();
      await c.waitFor("5 alive", () => c.allSee(all, all, "alive"));
      await c.waitFor("rebalanced onto 5 peers", () => fullyReplicated(c, keys), 45_000, 500);
      sampling = false;
      await sampler;
      console.log(`rebalance: ${samples} full samples of every chunk's holders; minimum seen ${minHolders}`);
      expect(samples).toBeGreaterThan(0);
      expect(minHolders).toBeGreaterThanOrEqual(3);

      const ids = all.map((i) => c.peers[i].id);
      const ring = buildRing(ids.map((id) => ({ id })));
      await c.waitFor("every peer holds only chunks it owns", async () => {
        for (const i of all) {
          for (const id of chunkFiles(c.peers[i].dataDir)) if (!ring.replicasFor(id, 3).includes(c.peers[i].id)) return false;
        }
        return true;
      }, 20_000, 500);
      for (const i of [3, 4]) expect(chunkFiles(c.peers[i].dataDir).length).toBeGreaterThan(0);
      await readsBack(c, data);
    });
  }, 180_000);

  // 30 s in the suite (three kill and restart rounds); `bun run soak` runs it for 5 minutes.
  const soakSeconds = Number(process.env.MESH_SOAK_SECONDS ?? 30);
  test(`soak: a writer and a reader for ${soakSeconds} s while a peer is killed and restarted every 10 s lose no acknowledged write`, async () => {
    await withCluster(5, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: 4000 } }, async (c) => {
      await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
      await mustCreateBucket(c.peer(0).httpUrl, BUCKET);
      const acked = new Map<string, Uint8Array>();
      const stats = { writes: 0, writeErrors: 0, reads: 0, readErrors: 0, wrong: 0 };
      const deadline = Date.now() + soakSeconds * 1000;
      const pick = () => {
        const r = c.running();
        return c.peer(r[Math.floor(c.random() * r.length)]).httpUrl;
      };

      const writer = (async () => {
        for (let n = 0; Date.now() < deadline; n++) {
          const key = `soak/${n}`;
          const body = seededBytes([200, 20_000, CHUNK + 5, 2 * CHUNK][n % 4], c.seed + n);
          try {
            const r = await putObject(pick(), BUCKET, key, body);
            if (r.status === 200) acked.set(key, body);
            else stats.writeErrors++;
          } catch {
            stats.writeErrors++;
          }
          stats.writes++;
        }
      })();
      const reader = (async () => {
        while (Date.now() < deadline) {
          const keys = [...acked.keys()];
          if (!keys.length) {
            await Bun.sleep(50);
            continue;
          }
          const key = keys[Math.floor(c.random() * keys.length)];
          try {
            const r = await getObject(pick(), BUCKET, key);
            if (r.status === 200) {
              if (!sameBytes(r.body, acked.get(key)!)) stats.wrong++;
            } else stats.readErrors++;
          } catch {
            stats.readErrors++;
          }
          stats.reads++;
        }
      })();
      const chaos = (async () => {
        for (let round = 0; Date.now() < deadline - 8000; round++) {
          const victim = 1 + (round % 4);
          await c.kill(victim);
          await Bun.sleep(3000);
          await c.restart(victim);
          await Bun.sleep(7000);
        }
      })();
      await Promise.all([writer, reader, chaos]);
      console.log(`soak: ${stats.writes} writes (${acked.size} acknowledged, ${stats.writeErrors} refused), ${stats.reads} reads (${stats.readErrors} failed, ${stats.wrong} wrong)`);
      expect(stats.wrong).toBe(0);
      expect(acked.size).toBeGreaterThan(soakSeconds);

      const all = c.running();
      await c.waitFor("all alive after the soak", () => c.allSee(all, all, "alive"), 15_000);
      await c.waitFor("zero under-replicated everywhere", () => zeroUnderReplicated(c), 60_000, 500);
      await readsBack(c, acked);
    });
  }, 180_000 + soakSeconds * 1000);
});

function chunkFiles(dataDir: string): string[] {
  const root = path.join(dataDir, "chunks");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => readdirSync(path.join(root, d)).filter((f) => /^[0-9a-f]{64}$/.test(f)));
}
