// Draining and cancelling a drain on real peers over TCP. On a mesh of exactly RF peers a
// drain says why it cannot complete, and cancelling it makes the member count and own data
// again. On a bigger mesh, any member is drained (and its drain cancelled) through another
// peer's HTTP API; an unknown member is 404 and a dead one 503. /cluster/status shows the
// version and each member's share of the ring as it changes.
import { describe, expect, test } from "bun:test";
import pkg from "../../package.json" with { type: "json" };
import type { PeerView } from "../../src/api/status.ts";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, json, locate, mustCreateBucket, mustGet, mustPut, request, sameBytes, statusAndCode } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

type DrainState = { draining: boolean; safeToStop: boolean; reason?: string };
type Owners = Array<{ id: string; share: number }>;

const BUCKET = "drain";
const url = (c: Cluster, i: number) => c.peer(i).httpUrl;

/** A drain route's answer: its status and body. */
async function drainCall(c: Cluster, via: number, method: "POST" | "DELETE", path: string): Promise<{ status: number; state: DrainState }> {
  const r = await request(url(c, via), method, path);
  expect(`${method} ${path}: ${statusAndCode(r)}`).toBe(`${method} ${path}: ${method === "POST" ? 202 : 200}`);
  return { status: r.status, state: json<DrainState>(r) };
}

/** Whether observer `o` sees peer `t` draining, through `/cluster/peers` (its own record for itself). */
async function seesDraining(c: Cluster, o: number, t: number): Promise<boolean | undefined> {
  const view = await c.getJson<PeerView>(o, "/cluster/peers");
  const id = c.peers[t].id;
  return (view.self.id === id ? view.self : view.peers.find((p) => p.id === id))?.draining;
}

/** Every observer sees every target with `draining` as given. */
async function allSeeDraining(c: Cluster, observers: number[], targets: number[], draining: boolean): Promise<boolean> {
  for (const o of observers) for (const t of targets) if ((await seesDraining(c, o, t)) !== draining) return false;
  return true;
}

/** The ring owners peer i reports, as "p<index>=<share>" sorted by id. */
async function ringOf(c: Cluster, i: number): Promise<Owners> {
  return ((await clusterStatus(url(c, i))) as unknown as { ring: { owners: Owners } }).ring.owners;
}

describe("drain", () => {
  test("3 peers, RF 3: the drain says there is nowhere to move the data; cancelled, the member counts and holds copies again", async () => {
    await withCluster(3, { topology: "star" }, async (c) => {
      const all = [0, 1, 2];
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 15_000);
      await mustCreateBucket(url(c, 0), BUCKET);
      const before = seededBytes(300_000, 1);
      await mustPut(url(c, 0), BUCKET, "before", before);

      // Status: the version, and a ring of three members each owning every key (rf 3).
      const status = await clusterStatus(url(c, 0));
      expect((status as unknown as { version: string }).version).toBe(pkg.version);
      const full = c.peers.map((p) => p.id).sort();
      expect(await ringOf(c, 0)).toEqual(full.map((id) => ({ id, share: 1 })));

      // The drain cannot complete, and says why.
      const first = await drainCall(c, 2, "POST", "/cluster/drain");
      expect(first.state.draining).toBe(true);
      expect(first.state.safeToStop).toBe(false);
      expect(first.state.reason).toStartWith("3 members, RF 3: nowhere to move the data");
      await c.waitFor("the others see p2 draining", () => allSeeDraining(c, [0, 1, 2], [2], true), 5000);
      await c.waitFor("the ring on p0 leaves p2 out", async () => (await ringOf(c, 0)).length === 2, 3000);
      expect((await ringOf(c, 0)).map((o) => o.id)).toEqual(full.filter((id) => id !== c.peers[2].id));
      // Asked again a little later, it still cannot, for the same reason.
      await Bun.sleep(500);
      expect((await drainCall(c, 2, "POST", "/cluster/drain")).state).toEqual(first.state);
      // Nothing was dropped meanwhile: p2 still holds its copies, since no third peer could take them.
      for (const ch of (await locate(url(c, 0), BUCKET, "before")).chunks) expect(ch.holders).toContain(c.peers[2].id);

      // Cancelled: not draining anywhere, counted in quorums and in the ring again.
      expect((await drainCall(c, 2, "DELETE", "/cluster/drain")).state).toEqual({ draining: false, safeToStop: false });
      await c.waitFor("no one sees p2 draining", () => allSeeDraining(c, [0, 1, 2], [2], false), 5000);
      await c.waitFor("every peer counts 3 members in its quorum again", async () => {
        for (const i of all) if ((await clusterStatus(url(c, i))).quorum.members !== 3) return false;
        return true;
      }, 5000);
      await c.waitFor("the ring holds p2 again", async () => (await ringOf(c, 1)).length === 3, 3000);
      expect((await clusterStatus(url(c, 2))).draining).toBe(false);
      // Cancelling again is harmless.
      expect((await drainCall(c, 2, "DELETE", "/cluster/drain")).state).toEqual({ draining: false, safeToStop: false });

      // Writes succeed through every peer, and every object's chunks belong on all three again.
      const after = seededBytes(300_000, 2);
      for (const i of all) await mustPut(url(c, i), BUCKET, `after-${i}`, after);
      for (const i of all) {
        expect(sameBytes(await mustGet(url(c, i), BUCKET, "before"), before)).toBe(true);
        expect(sameBytes(await mustGet(url(c, i), BUCKET, `after-${(i + 1) % 3}`), after)).toBe(true);
      }
      await c.waitFor("p2 holds a copy of every chunk again", async () => {
        for (const key of ["before", "after-0", "after-1", "after-2"]) {
          for (const ch of (await locate(url(c, 0), BUCKET, key)).chunks) if (!ch.expected.includes(c.peers[2].id) || ch.holders.length !== 3) return false;
        }
        return true;
      }, 10_000);

      // The drained peer's feed tells the story once.
      const feed = json<{ events: Array<{ type: string }> }>(await request(url(c, 2), "GET", "/cluster/events"));
      expect(feed.events.map((e) => e.type).filter((t) => t.startsWith("drain."))).toEqual(["drain.started", "drain.cancelled"]);
      expect(c.peers[2].logs.filter((l) => l.includes("drain cancelled"))).toHaveLength(1);
    });
  }, 40_000);

  test("4 peers: drain a member through another peer and cancel it there too; an unknown member is 404, a dead one 503", async () => {
    await withCluster(4, { topology: "star" }, async (c) => {
      const all = [0, 1, 2, 3];
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 15_000);
      const d = c.peers[3].id;

      const started = await drainCall(c, 0, "POST", `/cluster/members/${d}/drain`);
      expect(started.state.draining).toBe(true);
      expect(started.state.reason).toBeUndefined(); // three others can take the copies
      expect((await clusterStatus(url(c, 3))).draining).toBe(true);
      await c.waitFor("every peer sees D draining", () => allSeeDraining(c, all, [3], true), 5000);
      await c.waitFor("the ring on p1 leaves D out", async () => !(await ringOf(c, 1)).some((o) => o.id === d), 3000);
      const shares = await ringOf(c, 1);
      expect(shares.reduce((a, o) => a + o.share, 0)).toBeCloseTo(3, 9);

      const cancelled = await drainCall(c, 0, "DELETE", `/cluster/members/${d}/drain`);
      expect(cancelled.state).toEqual({ draining: false, safeToStop: false });
      await c.waitFor("no peer sees D draining", () => allSeeDraining(c, all, [3], false), 5000);
      await c.waitFor("the ring on p1 holds D again", async () => (await ringOf(c, 1)).some((o) => o.id === d), 3000);
      const back = await ringOf(c, 1);
      expect(back.reduce((a, o) => a + o.share, 0)).toBeCloseTo(3, 9);
      for (const o of back) expect(o.share).toBeGreaterThan(0.5); // about 3/4 each

      // This peer's own id acts here.
      expect((await drainCall(c, 1, "DELETE", `/cluster/members/${c.peers[1].id}/drain`)).state).toEqual({ draining: false, safeToStop: false });

      for (const method of ["POST", "DELETE"]) {
        const r = await request(url(c, 0), method, "/cluster/members/12D3KooWNoSuchMemberNoSuchMemberNoSuchMember/drain");
        expect(`${method}: ${statusAndCode(r)}`).toBe(`${method}: 404 NoSuchMember`);
      }

      await c.kill(3);
      await c.waitFor("p0 sees D dead", async () => (await c.viewOf(0)).get(d) === "dead", 10_000);
      const dead = await request(url(c, 0), "POST", `/cluster/members/${d}/drain`);
      expect(statusAndCode(dead)).toBe("503 ServiceUnavailable");
      expect(json<{ error: { message: string } }>(dead).error.message).toContain("is dead");
    });
  }, 40_000);
});
