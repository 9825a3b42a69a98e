// A request's work stops when its HTTP client goes away: the request's signal (aborted by
// the node:http adapter when the connection closes) reaches the index and chunk calls the
// request makes. Behind 250 ms links, a GET whose client vanishes 100 ms in makes its
// peer send no chunk.get (the quorum read of the manifest it was waiting for is
// abandoned), while the same GET kept open fetches the chunk from another peer.
import { expect, test } from "bun:test";
import { TEST_MEMBERSHIP, withCluster } from "../harness/cluster.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { locate, mustCreateBucket, mustGet, mustPut, rawRequest, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const KiB = 1024;
const LINK = { delayMs: 250, jitterMs: 0, lossRate: 0, bytesPerSecond: 100 * 1024 * KiB };
/** Probe timeouts well above the 500 ms round trips, so nobody is suspected. */
const MEMBERSHIP = { ...TEST_MEMBERSHIP, probeIntervalMs: 2000, probeTimeoutMs: 1500, deadAfterMs: 30_000 };

test("a GET whose client goes away stops before fetching any chunk; kept open, it fetches them", async () => {
  await withCluster(4, { topology: "star", link: LINK, membership: MEMBERSHIP, config: { chunkSize: 64 * KiB, inlineMaxBytes: 1024 } }, async (c) => {
    const all = c.running();
    await c.waitFor("all alive", () => c.allSee(all, all, "alive"), 60_000, 500);
    await mustCreateBucket(c.peer(0).httpUrl, "gone");
    // An object and a serving peer that does not hold its first chunk, so that reading it
    // there needs a chunk.get. With 4 peers and 3 copies a chunk has one such peer; it must
    // not be peer 0, which wrote and located the object: locate read the manifest through
    // peer 0's manifest cache (src/cache/manifest-cache.ts), where it stays for the lease
    // (3 s), and a GET answered from there has no quorum read left to abandon (serving from
    // peer 0, this test failed with 1 chunk.get for the abandoned GET). A key or two is
    // written here, where finding a first chunk that missed peer 0 took four or so.
    let key = "";
    let body: Uint8Array = new Uint8Array(0);
    let serving = -1;
    for (let n = 0; n < 20 && !key; n++) {
      const data = seededBytes(3 * 64 * KiB, c.seed + n);
      await mustPut(c.peer(0).httpUrl, "gone", `k${n}`, data);
      const where = await locate(c.peer(0).httpUrl, "gone", `k${n}`);
      serving = all.find((i) => i !== 0 && !where.chunks[0].holders.includes(c.peers[i].id)) ?? -1;
      if (serving >= 0) [key, body] = [`k${n}`, data];
    }
    expect(key).not.toBe("");
    const url = c.peer(serving).httpUrl;
    const chunkGets = () => c.peer(serving).testHooks.rpcCounters.sent.get("chunk.get") ?? 0;

    const before = chunkGets();
    const head = `GET /buckets/gone/objects/${key} HTTP/1.1\r\nhost: peer\r\nauthorization: ${ADMIN_BEARER}\r\n\r\n`;
    const gone = await rawRequest(url, head, new Uint8Array(0), "abort");
    expect(gone.status).toBeUndefined(); // it left before any answer
    await Bun.sleep(2000);
    const afterAbort = chunkGets();

    expect(sameBytes(await mustGet(url, "gone", key), body)).toBe(true);
    const afterGet = chunkGets();
    console.log(`chunk.get sent by the serving peer: ${afterAbort - before} for the abandoned GET, ${afterGet - afterAbort} for the one kept open`);
    expect(afterAbort - before).toBe(0);
    expect(afterGet - afterAbort).toBeGreaterThan(0);
  });
}, 120_000);
