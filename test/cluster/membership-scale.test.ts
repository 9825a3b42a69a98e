// Membership traffic per peer must not grow with the mesh: each peer probes one member
// per interval and gossips by piggyback. Measured at 4, 8 and 16 peers.
import { expect, test } from "bun:test";
import { meshKey } from "../../src/membership/discovery.ts";
import { TEST_MEMBERSHIP, withCluster } from "../harness/cluster.ts";

const WINDOW_MS = 6000;
// A slower beat than the other cluster tests: 16 peers share one process here, and the
// point is how traffic scales with N, not how fast one interval is.
const MEMBERSHIP = { ...TEST_MEMBERSHIP, probeIntervalMs: 500, probeTimeoutMs: 400 };

test("per-peer membership message rate stays bounded at 4, 8 and 16 peers", async () => {
  const rows: Array<{ n: number; mean: number; max: number; pings: number }> = [];
  // One mesh grown from 4 to 8 to 16 peers, each new peer joining through peer 0 (a star, as
  // when each size was a mesh of its own), measured once every peer sees every other alive.
  // Repair runs at its production pace here: this test is about membership traffic alone.
  await withCluster(4, { topology: "star", membership: MEMBERSHIP, config: { repair: { scanIntervalMs: 10_000, gcIntervalMs: 60_000 } } }, async (c) => {
    for (const n of [4, 8, 16]) {
      while (c.peers.length < n) await c.add(0);
      const all = c.running();
      expect(all.length).toBe(n);
      // Joining is not what is measured: a generous bound, for a loaded 2-core machine.
      await c.waitFor(`${n} peers alive everywhere`, () => c.allSee(all, all, "alive"), 30_000);
      const count = (i: number) => {
        let total = 0;
        const { sent, received } = c.peer(i).testHooks.rpcCounters;
        for (const [m, k] of sent) if (m.startsWith("swim.")) total += k;
        for (const [m, k] of received) if (m.startsWith("swim.")) total += k; // each request received is answered
        return total;
      };
      const probes = (i: number) => (c.peer(i).status().membership as { probesStarted: number }).probesStarted;
      const start = all.map((i) => [count(i), probes(i)]);
      await Bun.sleep(WINDOW_MS);
      const intervals = WINDOW_MS / MEMBERSHIP.probeIntervalMs;
      const perInterval = all.map((i, k) => (count(i) - start[k][0]) / intervals);
      const pings = all.map((i, k) => (probes(i) - start[k][1]) / intervals);
      rows.push({ n, mean: avg(perInterval), max: Math.max(...perInterval), pings: avg(pings) });
    }
  });
  console.log(`peers | membership msgs per peer per probe interval (${MEMBERSHIP.probeIntervalMs} ms): mean, max | probes started per interval`);
  for (const r of rows) console.log(`${String(r.n).padStart(5)} | ${r.mean.toFixed(2)}, ${r.max.toFixed(2)} | ${r.pings.toFixed(2)}`);
  for (const r of rows) {
    // Structure: one probe per interval whatever N (fewer while Lifeguard stretches the
    // interval of a peer that finds itself slow, as on a loaded 2-core machine).
    expect(r.pings).toBeGreaterThan(0.5);
    expect(r.pings).toBeLessThanOrEqual(1.05);
    // Bound: even if every probe failed, a peer sends a ping and 2 indirect requests and
    // answers about as many, plus the pings it makes for others: well under 10 per interval.
    expect(r.max).toBeLessThan(10);
  }
}, 120_000);

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("the DHT holds every member as a provider of the mesh key", async () => {
  await withCluster(5, { topology: "chain" }, async (c) => {
    const all = c.running();
    const key = await meshKey("meshstore");
    const ids = new Set(all.map((i) => c.peers[i].id));
    await c.waitFor("every peer finds all others through the DHT", async () => {
      for (const i of all) {
        const found = new Set(await c.peer(i).testHooks.dhtProviders(key, { signal: AbortSignal.timeout(3000) }));
        found.add(c.peers[i].id);
        if ([...ids].some((id) => !found.has(id))) return false;
      }
      return true;
    }, 15_000, 500);
  });
}, 60_000);
