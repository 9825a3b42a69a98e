// The cluster event feed: GET /cluster/events on real peers over TCP (a killed peer is a
// "dead" event on the survivors; keys created and revoked are events; `after` returns
// only newer ones; admin only), and the ring itself, bounded however many events come.
import { describe, expect, test } from "bun:test";
import { createEventFeed, FEED_MAX_READ } from "../../src/events/feed.ts";
import { withCluster } from "../harness/cluster.ts";
import { json, mustCreateBucket, mustPut, request } from "../harness/http.ts";
import { anonymous, bearer, createKey, revokeKey } from "../harness/s3.ts";

type Events = { events: Array<{ seq: number; timeMs: number; type: string; peer?: string; detail: string }>; lastSeq: number; capacity: number };

async function eventsOf(base: string, query = ""): Promise<Events> {
  const r = await request(base, "GET", `/cluster/events${query}`);
  expect(r.status).toBe(200);
  return json<Events>(r);
}

describe("event feed (unit)", () => {
  test("the ring keeps the newest events, in order, however many come", () => {
    let now = 1000;
    const feed = createEventFeed("self", 100, () => now++);
    for (let i = 1; i <= 10_000; i++) feed.add("key.created", `key ${i}`);
    const all = feed.read();
    expect(all.lastSeq).toBe(10_000);
    expect(all.capacity).toBe(100);
    expect(all.events.map((e) => e.seq)).toEqual(Array.from({ length: 100 }, (_, i) => 9901 + i));
    expect(all.events.at(-1)?.detail).toBe("key 10000");
    expect(feed.read(9_990).events.map((e) => e.seq)).toEqual([9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999, 10_000]);
    expect(feed.read(10_000).events).toEqual([]);
    expect(feed.read(0, 3).events.map((e) => e.seq)).toEqual([9998, 9999, 10_000]);
    expect(feed.read(0, 1_000_000).events.length).toBe(100);
  });

  test("the default ring holds 1000 events and a read returns at most 1000", () => {
    const feed = createEventFeed("self");
    for (let i = 0; i < 5000; i++) feed.add("repair.finished", "x");
    const r = feed.read();
    expect(r.capacity).toBe(1000);
    expect(r.events.length).toBe(FEED_MAX_READ);
    expect(r.events[0].seq).toBe(4001);
  });

  test("member changes: joined, suspect, dead, alive again; this peer's own changes and non-changes are left out", () => {
    const feed = createEventFeed("self");
    feed.member({ id: "other", state: "alive" }, undefined);
    feed.member({ id: "other", state: "suspect" }, "alive");
    feed.member({ id: "other", state: "dead" }, "suspect");
    feed.member({ id: "other", state: "alive" }, "dead");
    feed.member({ id: "other", state: "alive" }, "alive");
    feed.member({ id: "self", state: "alive" }, undefined);
    expect(feed.read().events.map((e) => `${e.type} ${e.peer}`)).toEqual(["peer.joined other", "peer.suspect other", "peer.dead other", "peer.alive other"]);
  });

  test("a drain is one started and one finished event, however often it is asked about", () => {
    const feed = createEventFeed("self");
    feed.drain({ draining: true, safeToStop: false });
    feed.drain({ draining: true, safeToStop: false });
    feed.drain({ draining: true, safeToStop: true });
    feed.drain({ draining: true, safeToStop: true });
    expect(feed.read().events.map((e) => e.type)).toEqual(["drain.started", "drain.finished"]);
  });

  test("a cancelled drain is one cancelled event; cancelling no drain is none, and a new drain starts afresh", () => {
    const feed = createEventFeed("self");
    feed.drain({ draining: false, safeToStop: false });
    feed.drain({ draining: true, safeToStop: false });
    feed.drain({ draining: false, safeToStop: false });
    feed.drain({ draining: false, safeToStop: false });
    feed.drain({ draining: true, safeToStop: true });
    expect(feed.read().events.map((e) => e.type)).toEqual(["drain.started", "drain.cancelled", "drain.started", "drain.finished"]);
  });
});

describe("GET /cluster/events", () => {
  test("a killed peer is a dead event on the survivors, then its copies' repair; keys created and revoked are events; after= returns only newer ones", async () => {
    // rf 2 of 3 peers: a dead peer's chunks have one copy left, which repair restores.
    await withCluster(3, { topology: "star", rf: 2 }, async (c) => {
      await c.waitFor("all alive", () => c.allSee([0, 1, 2], [0, 1, 2], "alive"));
      const base = c.peer(0).httpUrl;
      const victim = c.peer(2).peerId;

      // Joins are in the feed; it is for admins only.
      const first = await eventsOf(base);
      expect(first.events.filter((e) => e.type === "peer.joined").map((e) => e.peer).sort()).toEqual([c.peer(1).peerId, victim].sort());
      expect((await anonymous(base, "GET", "/cluster/events")).status).toBe(401);
      const reader = await createKey(base, { name: "reader" });
      expect((await request(base, "GET", "/cluster/events", { headers: { authorization: bearer(reader.token) } })).status).toBe(403);
      expect((await request(base, "GET", "/cluster/events?limit=0")).status).toBe(400);

      // Keys: created and revoked through this peer.
      const before = (await eventsOf(base)).lastSeq;
      const key = await createKey(base, { name: "temp" });
      expect((await revokeKey(base, key.accessKeyId)).status).toBe(204);
      const keyEvents = await eventsOf(base, `?after=${before}`);
      expect(keyEvents.events.every((e) => e.seq > before)).toBe(true);
      const keyLines = keyEvents.events.filter((e) => e.type.startsWith("key.")).map((e) => `${e.type} ${e.detail.includes(key.accessKeyId)}`);
      expect(keyLines).toEqual(["key.created true", "key.revoked true"]);

      // Objects whose copies the victim holds.
      await mustCreateBucket(base, "events");
      for (let i = 0; i < 8; i++) await mustPut(base, "events", `o${i}`, new Uint8Array(64 * 1024).fill(i + 1));

      // A killed peer: a dead event for it on both survivors.
      const mark = [(await eventsOf(base)).lastSeq, (await eventsOf(c.peer(1).httpUrl)).lastSeq];
      await c.kill(2);
      for (const [i, survivor] of [0, 1].entries()) {
        await c.waitFor(`peer ${survivor} has a dead event for the victim`, async () => {
          const r = await eventsOf(c.peer(survivor).httpUrl, `?after=${mark[i]}`);
          return r.events.some((e) => e.type === "peer.dead" && e.peer === victim);
        }, 15_000);
      }
      // Past the repair delay, a survivor restores the second copies and tells what it did.
      await c.waitFor("a survivor has a repair.finished event with chunks repaired", async () => {
        for (const [i, survivor] of [0, 1].entries()) {
          const r = await eventsOf(c.peer(survivor).httpUrl, `?after=${mark[i]}`);
          if (r.events.some((e) => e.type === "repair.finished" && /[1-9]\d* chunk\(s\) repaired/.test(e.detail))) return true;
        }
        return false;
      }, 30_000);
      const after = await eventsOf(base, `?after=${mark[0]}`);
      expect(after.events.every((e) => e.seq > mark[0])).toBe(true);
      console.log(after.events.map((e) => `${e.seq} ${e.type} ${e.detail}`).join("\n"));
      expect((await eventsOf(base, `?after=${after.lastSeq}`)).events).toEqual([]);
    });
  }, 60_000);
});
