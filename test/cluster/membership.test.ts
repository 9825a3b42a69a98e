// Mesh formation, failure detection and recovery over real libp2p on 127.0.0.1.
import { describe, expect, test } from "bun:test";
import { TEST_MEMBERSHIP, withCluster } from "../harness/cluster.ts";

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => i + from);

describe("membership", () => {
  test("8 peers in a chain all see each other; the chain's head dies; a 9th joins through any member", async () => {
    await withCluster(8, { topology: "chain" }, async (c) => {
      const all = range(8);
      const ms = await c.waitFor("all 8 peers alive in every view", () => c.allSee(all, all, "alive"), 10_000);
      console.log(`chain of 8 converged in ${ms} ms`);

      await c.kill(0);
      const rest = range(7, 1);
      await c.waitFor("peer 0 dead in the other views", () => c.allSee(rest, [0], "dead"), 10_000);
      expect(await c.allSee(rest, rest, "alive")).toBe(true);

      const via = rest[Math.floor(c.random() * rest.length)];
      const ninth = await c.add(via);
      const withNinth = [...rest, ninth.index];
      const joinMs = await c.waitFor(`9th peer (joined via peer ${via}) alive everywhere`, () => c.allSee(withNinth, withNinth, "alive"), 10_000);
      console.log(`9th peer seen by all in ${joinMs} ms`);
    });
  }, 60_000);

  test("a killed peer goes suspect then dead within bounds, and comes back alive with the same id", async () => {
    await withCluster(5, { topology: "star" }, async (c) => {
      const all = range(5);
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"));
      const victim = 3;
      const others = all.filter((i) => i !== victim);
      const oldId = c.peers[victim].id;
      await c.kill(victim);

      // Suspect: a member is probed at least once per round over N-1 members, then indirectly.
      const m = TEST_MEMBERSHIP;
      const suspectBound = (others.length + 2) * m.probeIntervalMs! + 3 * m.probeTimeoutMs! + 1000;
      const suspectMs = await c.waitFor("victim suspect or dead everywhere", () => c.allSee(others, [victim], "suspect-or-dead"), suspectBound, 25);
      const deadMs = await c.waitFor("victim dead everywhere", () => c.allSee(others, [victim], "dead"), suspectBound + m.deadAfterMs! + 1000, 25);
      console.log(`suspect after ${suspectMs} ms (bound ${suspectBound}), dead after ${deadMs} ms more (grace ${m.deadAfterMs})`);
      expect(deadMs).toBeGreaterThan(0);

      await c.restart(victim);
      expect(c.peers[victim].id).toBe(oldId);
      await c.waitFor("restarted peer alive everywhere", () => c.allSee(all, all, "alive"), 10_000);
    });
  }, 60_000);

  test("a 3/3 partition marks the other side dead, and healing brings all 6 back alive", async () => {
    await withCluster(6, { topology: "star" }, async (c) => {
      const all = range(6);
      const a = [0, 1, 2];
      const b = [3, 4, 5];
      await c.waitFor("all alive", () => c.allSee(all, all, "alive"));
      await c.partition([a, b]);
      await c.waitFor("each side sees the other dead", async () => (await c.allSee(a, b, "dead")) && (await c.allSee(b, a, "dead")), 15_000);
      expect(await c.allSee(a, a, "alive")).toBe(true);
      expect(await c.allSee(b, b, "alive")).toBe(true);
      await c.heal();
      const ms = await c.waitFor("all 6 alive everywhere after heal", () => c.allSee(all, all, "alive"), 15_000);
      console.log(`healed in ${ms} ms`);
    });
  }, 60_000);
});
