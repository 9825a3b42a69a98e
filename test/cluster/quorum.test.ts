// Quorums that do not shrink: a write is acknowledged only once W = floor(r/2)+1 peers
// have it, r = min(RF, members of the mesh), where dead members count until an operator
// removes them. A peer or minority that cannot reach W owners answers 503 and leaves
// nothing behind that a later read could mistake for an acknowledged write.
import { describe, expect, test } from "bun:test";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, errorOf, getObject, json, locate, mustCreateBucket, mustGet, putObject, request, sameBytes, type Located, type Reply } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const KiB = 1024;
const CHUNK = 256 * KiB;
const REPAIR_DELAY_MS = 1500;
const BUCKET = "quorum";
const url = (c: Cluster, i: number) => c.peer(i).httpUrl;
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);

/** A 503 ServiceUnavailable with Retry-After, as a refused write must be. */
function expectRefused(r: Reply, what: string) {
  if (r.status !== 503) throw new Error(`${what}: expected 503, got ${r.status} ${new TextDecoder().decode(r.body).slice(0, 200)}`);
  expect(errorOf(r).code).toBe("ServiceUnavailable");
  expect(r.headers.get("retry-after")).toBe("1");
}

/** Wait until the dead members have been dead longer than the repair delay (out of every ring). */
async function waitDeadAndOutOfRing(c: Cluster, observers: number[], dead: number[]) {
  await c.waitFor("the others are declared dead", () => c.allSee(observers, dead, "dead"), 15_000);
  await Bun.sleep(REPAIR_DELAY_MS + 400);
}

describe("quorums that do not shrink", () => {
  test("kill 2 of 3: the survivor refuses writes and stores nothing; one back: writes land on 2 holders; removing the dead one lowers r", async () => {
    await withCluster(3, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: REPAIR_DELAY_MS } }, async (c) => {
      await c.waitFor("all alive", () => c.allSee(range(3), range(3), "alive"));
      await mustCreateBucket(url(c, 0), BUCKET);
      const before = seededBytes(600 * KiB, c.seed);
      expect((await putObject(url(c, 0), BUCKET, "kept", before)).status).toBe(200);
      expect((await clusterStatus(url(c, 0))).quorum).toEqual({ members: 3, rf: 3, r: 3, w: 2 });

      const deadIds = [c.peers[1].id, c.peers[2].id];
      await c.kill(1);
      await c.kill(2);
      await waitDeadAndOutOfRing(c, [0], [1, 2]);
      // The survivor's ring now holds only itself, but the mesh still has 3 members: W stays 2.
      expect((await clusterStatus(url(c, 0))).quorum).toEqual({ members: 3, rf: 3, r: 3, w: 2 });
      const fresh = seededBytes(700 * KiB, c.seed + 1);
      expectRefused(await putObject(url(c, 0), BUCKET, "fresh", fresh), "new key through the survivor");
      expectRefused(await putObject(url(c, 0), BUCKET, "kept", fresh), "overwrite through the survivor");
      expectRefused(await putObject(url(c, 0), BUCKET, "tiny", "x"), "inline object through the survivor");
      expectRefused(await request(url(c, 0), "DELETE", `/buckets/${BUCKET}/objects/kept`), "delete through the survivor");
      // Reads need the same quorum: a cut-off peer never answers 404 for what exists elsewhere.
      expectRefused(await getObject(url(c, 0), BUCKET, "kept"), "read through the survivor");

      await c.restart(1, 0);
      await c.waitFor("peer 1 alive again", () => c.allSee([0, 1], [0, 1], "alive"), 15_000);
      // Nothing of the refused writes was left behind: the old object is intact, the new keys absent.
      expect(sameBytes(await mustGet(url(c, 1), BUCKET, "kept"), before)).toBe(true);
      expect((await getObject(url(c, 0), BUCKET, "fresh")).status).toBe(404);
      expect((await getObject(url(c, 0), BUCKET, "tiny")).status).toBe(404);

      const put = await putObject(url(c, 0), BUCKET, "fresh", fresh);
      expect(put.status).toBe(200);
      const where = await locate(url(c, 0), BUCKET, "fresh");
      expect(where.chunks.length).toBe(3);
      for (const chunk of where.chunks) expect(new Set(chunk.holders)).toEqual(new Set([c.peers[0].id, c.peers[1].id]));
      expect(sameBytes(await mustGet(url(c, 1), BUCKET, "fresh"), fresh)).toBe(true);

      // Removing a live member is refused; removing the dead one is an operator's act and lowers r.
      expect((await request(url(c, 0), "DELETE", `/admin/members/${c.peers[1].id}`)).status).toBe(409);
      expect((await request(url(c, 0), "DELETE", `/admin/members/12D3KooWNotAMember`)).status).toBe(404);
      const removed = await request(url(c, 0), "DELETE", `/admin/members/${deadIds[1]}`);
      expect(removed.status).toBe(200);
      await c.waitFor("both peers count 2 members", async () => {
        for (const i of [0, 1]) if ((await clusterStatus(url(c, i))).quorum.members !== 2) return false;
        return true;
      });
      expect((await clusterStatus(url(c, 1))).quorum).toEqual({ members: 2, rf: 3, r: 2, w: 2 });
      const peers = await c.getJson(1, "/cluster/peers");
      expect(peers.peers.map((p: { id: string }) => p.id)).not.toContain(deadIds[1]);

      // The roster is on disk: a restarted peer still counts the mesh, not itself alone.
      await c.stop(0);
      await c.restart(1);
      expect((await clusterStatus(url(c, 1))).quorum).toEqual({ members: 2, rf: 3, r: 2, w: 2 });
      expectRefused(await putObject(url(c, 1), BUCKET, "alone-after-restart", "y"), "write through a restarted peer whose only partner is down");
    });
  }, 60_000);

  test("5 peers, 1|4: the lone peer acknowledges nothing, before and after the repair delay; the four keep writing", async () => {
    await withCluster(5, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: REPAIR_DELAY_MS } }, async (c) => {
      const all = range(5);
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 15_000);
      await mustCreateBucket(url(c, 0), BUCKET);
      const lone = 4;
      const rest = [0, 1, 2, 3];
      await c.partition([rest, [lone]]);
      let acked = 0;
      let refused = 0;
      const attempt = async (n: number) => {
        const r = await putObject(url(c, lone), BUCKET, `lone-${n}`, seededBytes(n % 2 ? 300 * KiB : 100, c.seed + n));
        if (r.status === 200) acked++;
        else {
          expectRefused(r, `write ${n} through the lone peer`);
          refused++;
        }
      };
      // Right after the cut the lone peer still sees the others alive: quorum calls fail.
      for (const n of range(3)) await attempt(n);
      await waitDeadAndOutOfRing(c, [lone], rest);
      for (const n of range(6, 3)) await attempt(n);
      expect(acked).toBe(0);
      expect(refused).toBe(9);
      await waitDeadAndOutOfRing(c, rest, [lone]);
      for (const n of range(8)) expect((await putObject(url(c, rest[n % 4]), BUCKET, `four-${n}`, seededBytes(300 * KiB, c.seed + 100 + n))).status).toBe(200);

      await c.heal();
      await c.waitFor("all alive after healing", () => c.allSee(all, all, "alive"), 15_000);
      for (const n of range(9)) expect((await getObject(url(c, 0), BUCKET, `lone-${n}`)).status).toBe(404);
      for (const n of range(8)) expect(sameBytes(await mustGet(url(c, lone), BUCKET, `four-${n}`), seededBytes(300 * KiB, c.seed + 100 + n))).toBe(true);
      console.log(`1|4: lone peer acknowledged ${acked} of ${acked + refused} writes; the four acknowledged 8 of 8`);
    });
  }, 60_000);

  test("5 peers, 2|3: no key is acknowledged on both sides, every acknowledged write is on 2 peers at least, and all read back after healing", async () => {
    await withCluster(5, { topology: "star", config: { chunkSize: CHUNK, repairDelayMs: REPAIR_DELAY_MS } }, async (c) => {
      const all = range(5);
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 15_000);
      await mustCreateBucket(url(c, 0), BUCKET);
      const sides = [[0, 1, 2], [3, 4]];
      await c.partition(sides);
      // Once each side sees the other down, a side with too few reachable voters sends nothing.
      await c.waitFor("each side sees the other suspect or dead", async () => (await c.allSee(sides[0], sides[1], "suspect-or-dead")) && (await c.allSee(sides[1], sides[0], "suspect-or-dead")), 15_000);
      const KEYS = 30;
      const ackedBy = new Map<string, { side: number; data: Uint8Array }[]>();
      const counts = sides.map(() => ({ acked: 0, refused: 0 }));
      const write = async (side: number, n: number, round: number) => {
        const key = `k${n}`;
        const data = seededBytes(300 * KiB, c.seed + side * 10_000 + round * 100 + n);
        const via = sides[side][(n + round) % sides[side].length];
        const r = await putObject(url(c, via), BUCKET, key, data);
        if (r.status !== 200) {
          expectRefused(r, `write ${key} on side ${side}`);
          counts[side].refused++;
          return;
        }
        counts[side].acked++;
        ackedBy.set(key, [...(ackedBy.get(key) ?? []), { side, data }]);
        // Where it landed, when this side can still read the bucket's row to say (locate needs it too).
        const where = await request(url(c, via), "GET", `/cluster/locate/${BUCKET}/${key}`);
        if (where.status === 503) return;
        const loc = json<Located>(where);
        for (const chunk of loc.chunks) expect(chunk.holders.length).toBeGreaterThanOrEqual(2);
        expect(loc.shard.holders.length).toBeGreaterThanOrEqual(2);
        located++;
      };
      let located = 0;
      // Both sides write every key, before and after the repair delay (which moves the live
      // rings but never the voters).
      for (const n of range(KEYS)) await Promise.all([write(0, n, 0), write(1, n, 0)]);
      await Bun.sleep(REPAIR_DELAY_MS + 400);
      for (const n of range(KEYS)) await Promise.all([write(0, n, 1), write(1, n, 1)]);
      // A key's manifest has 3 voters, split 3-0 or 2-1 between the sides: only one side can
      // hold W = 2 of them, so no key is acknowledged on both sides. (A side may hold neither
      // the manifest's nor the bucket's nor a chunk's voters, so some keys are written by none.)
      for (const n of range(KEYS)) {
        const sidesThatWrote = new Set((ackedBy.get(`k${n}`) ?? []).map((a) => a.side));
        expect(`k${n} acknowledged by ${sidesThatWrote.size > 1 ? "both sides" : "one side at most"}`).toBe(`k${n} acknowledged by one side at most`);
      }
      expect(counts[0].acked + counts[1].acked).toBeGreaterThan(0);
      expect(located).toBeGreaterThan(0);

      await c.heal();
      await c.waitFor("all alive after healing", () => c.allSee(all, all, "alive"), 15_000);
      for (const i of all) {
        for (const [key, acks] of ackedBy) expect(sameBytes(await mustGet(url(c, i), BUCKET, key), acks[acks.length - 1].data)).toBe(true);
      }
      console.log(`2|3: the three acknowledged ${counts[0].acked} writes (refused ${counts[0].refused}), the two ${counts[1].acked} (refused ${counts[1].refused}); no key by both; all read back through all 5`);
    });
  }, 90_000);
});
