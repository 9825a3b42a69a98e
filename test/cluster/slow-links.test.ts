// Failure detection that tells slow from dead: every peer sits behind a shaped link
// (test/harness/slow-link.ts: 50 ms round trips, jitter, 1% segment loss stalling the
// stream, 10 MB/s per connection). Bulk chunk traffic then queues for seconds on a data
// connection; membership probes ride their own control connection and Lifeguard's
// adaptive timeouts, so 20 MiB uploads cause no false suspicion, while a real kill is
// still declared dead within --dead-after plus the probe timeouts.
import { expect, test } from "bun:test";
import { DEFAULT_MEMBERSHIP } from "../../src/config.ts";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { mustCreateBucket, mustGet, putObject, sameBytes } from "../harness/http.ts";
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

test("20 MiB uploads over 50 ms, 1% loss links cause no false suspicion; a kill is still declared dead in time", async () => {
  await withCluster(3, { topology: "star", link: LINK, membership: MEMBERSHIP, config: { repairDelayMs: 60_000 } }, async (c) => {
    const all = c.running();
    await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 20_000);
    const before = suspicions(c).length;
    await mustCreateBucket(c.peer(0).httpUrl, "slow");
    const started = Date.now();
    const bodies = [0, 1, 2].map((n) => seededBytes(20 * MiB, c.seed + n));
    for (const [n, body] of bodies.entries()) expect((await putObject(c.peer(n % 3).httpUrl, "slow", `big-${n}`, body)).status).toBe(200);
    // Reads cross the links too (each peer holds its own copy; read through another peer's).
    expect(sameBytes(await mustGet(c.peer(1).httpUrl, "slow", "big-0"), bodies[0])).toBe(true);
    const bulkMs = Date.now() - started;
    const falseOnes = suspicions(c).slice(before);
    console.log(`3 x 20 MiB up and 20 MiB down over shaped links in ${bulkMs} ms; false suspicions: ${falseOnes.length}`);
    expect(falseOnes).toEqual([]);

    // A real death: declared within --dead-after plus the probe timeouts (stretched at most by Lifeguard's health).
    const killedAt = Date.now();
    await c.kill(2);
    const deadMs = await c.waitFor("the killed peer declared dead", () => c.allSee([0, 1], [2], "dead"), 30_000, 50);
    const bound = MEMBERSHIP.deadAfterMs + 4 * MEMBERSHIP.probeIntervalMs + 2 * MEMBERSHIP.probeTimeoutMs * 4;
    console.log(`killed peer declared dead after ${deadMs} ms (bound ${bound} ms)`);
    expect(deadMs).toBeLessThan(bound);
    expect(Date.now() - killedAt).toBeGreaterThan(0);
    // The survivors never suspected each other (what the killed peer logged as it died does not count).
    const survivors = [c.peers[0].id.slice(-6), c.peers[1].id.slice(-6)];
    const wrong = suspicions(c, [0, 1]).filter((l) => survivors.some((s) => l.includes(`member ${s}:`)));
    expect(wrong).toEqual([]);
  });
}, 120_000);
