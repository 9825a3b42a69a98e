import { describe, expect, test } from "bun:test";
import { MAX_INCARNATION_AHEAD_MS, MemberTable, saneIncarnation, supersedes, type MemberRecord } from "../../src/membership/member-table.ts";
import { GossipQueue } from "../../src/membership/gossip-queue.ts";

const rec = (id: string, state: MemberRecord["state"], inc: number): MemberRecord => ({ id, addrs: [`/ip4/127.0.0.1/tcp/1/p2p/${id}`], state, inc });

describe("SWIM precedence", () => {
  test("alive needs a higher incarnation to override anything", () => {
    expect(supersedes({ state: "alive", inc: 2 }, { state: "dead", inc: 1 })).toBe(true);
    expect(supersedes({ state: "alive", inc: 1 }, { state: "suspect", inc: 1 })).toBe(false);
    expect(supersedes({ state: "alive", inc: 1 }, { state: "alive", inc: 1 })).toBe(false);
  });
  test("suspect and dead override alive at the same incarnation, dead overrides suspect", () => {
    expect(supersedes({ state: "suspect", inc: 1 }, { state: "alive", inc: 1 })).toBe(true);
    expect(supersedes({ state: "dead", inc: 1 }, { state: "suspect", inc: 1 })).toBe(true);
    expect(supersedes({ state: "suspect", inc: 1 }, { state: "dead", inc: 1 })).toBe(false);
    expect(supersedes({ state: "suspect", inc: 0 }, { state: "alive", inc: 1 })).toBe(false);
  });
});

describe("MemberTable", () => {
  test("learns members, spreads only real changes, and reports state transitions", () => {
    let now = 1000;
    const t = new MemberTable(rec("self", "alive", 5), () => now);
    const changes: string[] = [];
    t.onChange((m, prev) => changes.push(`${m.id}:${prev ?? "new"}->${m.state}`));
    expect(t.apply(rec("a", "alive", 1))).toBeDefined();
    expect(t.apply(rec("a", "alive", 1))).toBeUndefined();
    expect(t.suspect("a")).toMatchObject({ state: "suspect", inc: 1 });
    now += 500;
    expect(t.expiredSuspects(1000)).toEqual([]);
    now += 600;
    expect(t.expiredSuspects(1000)).toEqual(["a"]);
    expect(t.declareDead("a")).toMatchObject({ state: "dead" });
    expect(t.apply(rec("a", "alive", 1))).toBeUndefined();
    expect(t.apply(rec("a", "alive", 2))).toMatchObject({ state: "alive", inc: 2 });
    expect(changes).toEqual(["a:new->alive", "a:alive->suspect", "a:suspect->dead", "a:dead->alive"]);
  });

  test("a member's record carries its draining flag, so gossip about it never puts a drained member back in the ring", () => {
    const t = new MemberTable(rec("self", "alive", 5));
    t.apply({ ...rec("a", "alive", 3), draining: true });
    t.suspect("a");
    expect(t.record("a")).toMatchObject({ id: "a", state: "suspect", inc: 3, draining: true });
    t.apply({ ...t.record("a")!, by: "b" });
    expect(t.get("a")?.draining).toBe(true);
  });

  test("a cancelled drain raises the incarnation, so the other tables take the member back as not draining", () => {
    const self = new MemberTable(rec("self", "alive", 5));
    const other = new MemberTable(rec("o", "alive", 1));
    expect(self.stopDraining()).toBeUndefined(); // not draining: nothing to spread
    other.apply(self.startDraining());
    expect(other.get("self")).toMatchObject({ inc: 6, draining: true });
    const back = self.stopDraining()!;
    expect(back).toMatchObject({ id: "self", inc: 7 });
    expect(back.draining).toBeUndefined();
    expect(other.apply(back)).toBeDefined();
    expect(other.get("self")?.draining).toBeUndefined();
    expect(other.record("self")).toEqual({ id: "self", addrs: back.addrs, http: undefined, state: "alive", inc: 7 });
  });

  test("a removed member stays removed against old news, and leaves the member list", () => {
    const t = new MemberTable(rec("self", "alive", 5));
    t.apply(rec("a", "alive", 3));
    expect(t.remove("a")).toBeUndefined(); // only dead members can be removed
    t.declareDead("a");
    expect(t.remove("a")).toMatchObject({ state: "removed", inc: 3 });
    expect(t.apply(rec("a", "dead", 3))).toBeUndefined();
    expect(t.apply(rec("a", "alive", 3))).toBeUndefined();
    expect(t.others().map((m) => m.id)).toEqual([]);
    expect(t.records().map((r) => `${r.id}:${r.state}`)).toEqual(["self:alive", "a:removed"]);
    // The member itself, restarted, comes back with a higher incarnation.
    expect(t.apply(rec("a", "alive", 4))).toMatchObject({ state: "alive", inc: 4 });
  });

  test("a peer refutes rumours of its own death by raising its incarnation", () => {
    const t = new MemberTable(rec("self", "alive", 5));
    expect(t.apply(rec("self", "suspect", 4))).toBeUndefined();
    const refuted = t.apply(rec("self", "dead", 7));
    expect(refuted).toMatchObject({ id: "self", state: "alive", inc: 8 });
    expect(t.self.inc).toBe(8);
  });

  test("incarnations are safe integers at most a day ahead of the clock; others are dropped, about anyone", () => {
    const now = 1_760_000_000_000; // boot-time incarnations are wall-clock ms
    const bound = now + MAX_INCARNATION_AHEAD_MS;
    for (const inc of [0, 1, now, bound]) expect(saneIncarnation(inc, now)).toBe(true);
    const absurd = [2 ** 60, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, bound + 1, -1, 1.5, Number.NaN, Infinity];
    for (const inc of absurd) expect(saneIncarnation(inc, now)).toBe(false);

    const t = new MemberTable(rec("self", "alive", now - 5000), () => now);
    t.apply(rec("a", "alive", now - 9000));
    for (const inc of absurd) {
      expect(t.apply(rec("a", "dead", inc))).toBeUndefined();
      expect(t.apply(rec("self", "dead", inc))).toBeUndefined();
      expect(t.apply(rec("new", "alive", inc))).toBeUndefined();
    }
    expect(t.get("a")).toMatchObject({ state: "alive", inc: now - 9000 });
    expect(t.self.inc).toBe(now - 5000);
    expect(t.get("new")).toBeUndefined();
  });

  test("at the highest acceptable incarnation the refutation is exact and wins", () => {
    let now = 1_760_000_000_000;
    const bound = now + MAX_INCARNATION_AHEAD_MS;
    const self = new MemberTable(rec("self", "alive", now), () => now);
    const other = new MemberTable(rec("other", "alive", now), () => now);
    other.apply(rec("self", "alive", now));
    // A forged death at the bound reaches both; the victim refutes with bound + 1.
    expect(other.apply(rec("self", "dead", bound))).toMatchObject({ state: "dead", inc: bound });
    const refutation = self.apply(rec("self", "dead", bound))!;
    expect(refutation).toEqual({ ...self.self, state: "alive", inc: bound + 1 });
    expect(refutation.inc - bound).toBe(1);
    // A millisecond later the refutation is within everyone's bound, and beats the forgery.
    now += 1;
    expect(other.apply(refutation)).toMatchObject({ state: "alive", inc: bound + 1 });
    expect(other.get("self")?.state).toBe("alive");
  });
});

describe("GossipQueue", () => {
  test("sends least-sent first, replaces older news, and drops after the limit", () => {
    const q = new GossipQueue();
    q.push(rec("a", "alive", 1));
    q.push(rec("b", "alive", 1));
    expect(q.take(1, 2).map((r) => r.id)).toEqual(["a"]);
    expect(q.take(1, 2).map((r) => r.id)).toEqual(["b"]);
    q.push(rec("a", "dead", 1));
    expect(q.take(5, 2)).toEqual([rec("a", "dead", 1), rec("b", "alive", 1)]);
    expect(q.size).toBe(1);
    q.take(5, 2);
    expect(q.size).toBe(0);
  });
});
