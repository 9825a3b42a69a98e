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
  const rows: Array<{ n: number; mean: number; max: number }> = [];
  for (const n of [4, 8, 16]) {
    // Repair runs at its production pace here: this test is about membership traffic alone.
    await withCluster(n, { topology: "star", membership: MEMBERSHIP, config: { repair: { scanIntervalMs: 10_000, gcIntervalMs: 60_000 } } }, async (c) => {
      const all = c.running();
      await c.waitFor(`${n} peers alive everywhere`, () => c.allSee(all, all, "alive"), 15_000);
      const sentOf = (i: number) => {
        let total = 0;
        for (const [m, k] of c.peer(i).rpc.counters.sent) if (m.startsWith("swim.")) total += k;
        for (const [m, k] of c.peer(i).rpc.counters.received) if (m.startsWith("swim.")) total += k; // each received request is answered
        return total;
      };
      const start = all.map(sentOf);
      await Bun.sleep(WINDOW_MS);
      const rates = all.map((i, k) => ((sentOf(i) - start[k]) * 1000) / WINDOW_MS);
      rows.push({ n, mean: rates.reduce((a, b) => a + b, 0) / rates.length, max: Math.max(...rates) });
    });
  }
  const perSecondPerProbe = 1000 / MEMBERSHIP.probeIntervalMs;
  console.log("peers | membership msgs/s per peer (mean, max) at a probe interval of", MEMBERSHIP.probeIntervalMs, "ms");
  for (const r of rows) console.log(`${String(r.n).padStart(5)} | ${r.mean.toFixed(1)}, ${r.max.toFixed(1)}`);
  // Bounded: a ping sent and one answered per interval, plus occasional indirect probes and syncs.
  for (const r of rows) expect(r.max).toBeLessThan(4 * perSecondPerProbe);
  expect(rows[2].mean).toBeLessThan(rows[0].mean * 1.5);
}, 120_000);

test("the DHT holds every member as a provider of the mesh key", async () => {
  await withCluster(5, { topology: "chain" }, async (c) => {
    const all = c.running();
    const key = await meshKey("meshstore");
    const ids = new Set(all.map((i) => c.peers[i].id));
    await c.waitFor("every peer finds all others through the DHT", async () => {
      for (const i of all) {
        const found = new Set<string>();
        for await (const ev of c.peer(i).libp2p.services.dht.findProviders(key, { signal: AbortSignal.timeout(3000) })) {
          if (ev.name === "PROVIDER") for (const p of ev.providers) found.add(p.id.toString());
        }
        found.add(c.peers[i].id);
        if ([...ids].some((id) => !found.has(id))) return false;
      }
      return true;
    }, 15_000, 500);
  });
}, 60_000);
