// Failure detection that tells slow from dead: every peer sits behind a shaped link
// (test/harness/slow-link.ts: 50 ms round trips, jitter, 1% segment loss stalling the
// stream, 10 MB/s per connection). Bulk chunk traffic then queues for seconds on a data
// connection; membership probes ride their own control connection and Lifeguard's
// adaptive timeouts, so 20 MiB uploads cause no false suspicion, while a real kill is
// still declared dead within --dead-after plus the probe timeouts.
import { expect, test } from "bun:test";
import { DEFAULT_MEMBERSHIP } from "../../src/config.ts";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, locate, mustCreateBucket, mustGet, putObject, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";
import type { LinkShape } from "../harness/slow-link.ts";

const MiB = 1024 * 1024;
const LINK: LinkShape = { delayMs: 25, jitterMs: 5, lossRate: 0.01, bytesPerSecond: 10 * MiB };
/** Production probing (1 s interval, 500 ms timeout floor) with a short --dead-after. */
const MEMBERSHIP = { ...DEFAULT_MEMBERSHIP, deadAfterMs: 4000, syncEveryProbes: 10, deadProbeEveryProbes: 3 };

/** Every "-> suspect" or "-> dead" transition logged so far by the given peers (default all). */
function suspicions(c: Cluster, by = c.peers.map((p) => p.index)): string[] {
  return by.flatMap((i) => c.peers[i].logs.filter((l) => / -> (suspect|dead)/.test(l)).map((l) => `p${i}: ${l}`));
}

test("20 MiB uploads and a repair over 50 ms, 1% loss links cause no false suspicion; a kill is still declared dead in time", async () => {
  const repairDelayMs = 2000;
  await withCluster(4, { topology: "star", link: LINK, membership: MEMBERSHIP, config: { repairDelayMs } }, async (c) => {
    const all = c.running();
    await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 20_000);
    const before = suspicions(c).length;
    await mustCreateBucket(c.peer(0).httpUrl, "slow");
    const started = Date.now();
    const bodies = [0, 1, 2].map((n) => seededBytes(20 * MiB, c.seed + n));
    for (const [n, body] of bodies.entries()) expect((await putObject(c.peer(n % 3).httpUrl, "slow", `big-${n}`, body)).status).toBe(200);
    // Reads cross the links too.
    expect(sameBytes(await mustGet(c.peer(1).httpUrl, "slow", "big-0"), bodies[0])).toBe(true);
    const bulkMs = Date.now() - started;
    const falseOnes = suspicions(c).slice(before);
    console.log(`3 x 20 MiB up and 20 MiB down over shaped links in ${bulkMs} ms; false suspicions: ${falseOnes.length}`);
    expect(falseOnes).toEqual([]);

    // A real death: declared within --dead-after plus the probe timeouts (stretched at most by Lifeguard's health).
    await c.kill(3);
    const survivors = [0, 1, 2];
    const deadMs = await c.waitFor("the killed peer declared dead", () => c.allSee(survivors, [3], "dead"), 30_000, 50);
    const bound = MEMBERSHIP.deadAfterMs + 4 * MEMBERSHIP.probeIntervalMs + 2 * MEMBERSHIP.probeTimeoutMs * 4;
    console.log(`killed peer declared dead after ${deadMs} ms (bound ${bound} ms)`);
    expect(deadMs).toBeLessThan(bound);
    // Its chunks are copied to new owners over the same slow links...
    const repairMs = await c.waitFor("repair done: every chunk on 3 live holders", async () => {
      for (const n of [0, 1, 2]) {
        const where = await locate(c.peer(0).httpUrl, "slow", `big-${n}`);
        if (where.chunks.some((ch) => ch.holders.filter((h) => h !== c.peers[3].id).length < 3)) return false;
      }
      return true;
    }, 60_000, 250);
    const repaired = (await Promise.all(survivors.map((i) => clusterStatus(c.peer(i).httpUrl)))).reduce((n, s) => n + s.repair.bytesRepaired, 0);
    console.log(`repair copied ${(repaired / MiB).toFixed(1)} MiB in ${repairMs} ms after the death`);
    expect(repaired).toBeGreaterThan(0);
    // ...and the survivors never suspected each other, through the uploads, the death and the repair.
    const ids = survivors.map((i) => c.peers[i].id.slice(-6));
    const wrong = suspicions(c, survivors).filter((l) => ids.some((s) => l.includes(`member ${s}:`)));
    expect(wrong).toEqual([]);
  });
}, 180_000);
