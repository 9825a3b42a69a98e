// Webhooks on a real 3-peer mesh (issue 16): a receiver that fails its first POSTs still
// gets every event id of the log, each POST signed with the target's secret and its attempt
// counted; status shows the lag, the last success and the last error; killing a peer that is
// delivering, the others deliver the rest with no gap; bad targets are 4xx with a code and a
// message, and no answer or log line ever shows a secret.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { objectShard } from "../../src/metadata/keys.ts";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { deleteObject, errorOf, json, mapLimit, mustCreateBucket, putObject, request, statusAndCode, type Reply } from "../harness/http.ts";
import { suiteLeaks } from "../harness/leak-check.ts";
import { bearer, createKey } from "../harness/s3.ts";
import { startReceiver, type Receiver } from "../harness/webhook-receiver.ts";

let cluster: Cluster;
const receivers: Receiver[] = [];
beforeAll(async () => {
  // Short marks, retries, polls and target refreshes, so deliveries and takeovers happen within a second or two.
  cluster = await startConverged(3, { config: { events: { settleMs: 500, retryBaseMs: 100, maxRetryMs: 1000, webhookPollMs: 150, webhookRefreshMs: 300, webhookTimeoutMs: 3000 } } });
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.stop()));
  await teardownCluster(cluster);
});

const url = (i: number) => cluster.peer(i).httpUrl;
const anyOf = (peers: number[]) => url(peers[Math.floor(cluster.random() * peers.length)]);
const OBJECT_EVENTS = ["ObjectCreated:*", "ObjectRemoved:*"];

/** A webhook secret this test makes: the suite's leak check fails any test whose peers log it. */
function newSecret(name: string): string {
  const secret = `whsec-${name}-${crypto.randomUUID()}`;
  suiteLeaks.register("webhook secret", secret);
  return secret;
}

function receiver(secret: string, opts: { failFirst?: number; delayMs?: number } = {}): Receiver {
  const r = startReceiver(secret, opts);
  receivers.push(r);
  return r;
}

const putTargets = (base: string, bucket: string, body: unknown, headers: Record<string, string> = {}) =>
  request(base, "PUT", `/buckets/${bucket}/notifications`, { body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json", ...headers } });

interface Status {
  id: string;
  lag: number;
  lagCapped: boolean;
  oldestPendingMs?: number;
  lastSuccessMs: number | null;
  lastError: { message: string; atMs: number } | null;
  failing: boolean;
}
async function statusOf(base: string, bucket: string, id: string): Promise<Status> {
  const r = await request(base, "GET", `/buckets/${bucket}/notifications/status`);
  if (r.status !== 200) throw new Error(`status: ${statusAndCode(r)}`);
  const found = json<{ targets: Status[] }>(r).targets.find((t) => t.id === id);
  if (!found) throw new Error(`no status for target ${id}`);
  return found;
}

/** The ids of the events of `types` in the log, read from the earliest through `peers` until the cursor passes now. */
async function logIds(bucket: string, peers: number[], types = OBJECT_EVENTS): Promise<string[]> {
  const end = Date.now();
  const ids: string[] = [];
  let cursor = "";
  for (let reads = 0; reads < 1000; reads++) {
    const r = await request(anyOf(peers), "GET", `/buckets/${bucket}/events?limit=500&types=${types.join(",")}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    if (r.status !== 200) throw new Error(`events: ${statusAndCode(r)}`);
    const page = json<{ events: Array<{ eventId: string }>; cursor: string }>(r);
    ids.push(...page.events.map((e) => e.eventId));
    cursor = page.cursor;
    if (Number(cursor.slice(0, 13)) > end) return ids;
    if (!page.events.length) await Bun.sleep(100);
  }
  throw new Error("the log was not read to its end");
}

/** `n` writes (puts, overwrites, deletes) of keys under `prefix` through `peers`, each retried until acknowledged. */
async function writeMany(bucket: string, prefix: string, n: number, peers: number[], concurrency = 8): Promise<void> {
  await mapLimit(Array.from({ length: n }, (_, i) => i), concurrency, async (i) => {
    const key = `${prefix}${String(i % Math.max(1, Math.floor(n / 2))).padStart(4, "0")}`;
    const remove = i >= n / 2 && i % 3 === 0;
    for (let tries = 0; ; tries++) {
      const r = remove ? await deleteObject(anyOf(peers), bucket, key) : await putObject(anyOf(peers), bucket, key, `v${i}`);
      if (r.status === (remove ? 204 : 200)) return;
      if (tries >= 20) throw new Error(`${remove ? "DELETE" : "PUT"} ${key}: ${statusAndCode(r)}`);
      await Bun.sleep(100);
    }
  });
}

/** Wait until the receiver has every id of the log's events of `types` (read through `peers`); answers the ids. */
async function waitForAll(r: Receiver, bucket: string, peers: number[], timeoutMs = 30_000, types = OBJECT_EVENTS): Promise<string[]> {
  const ids = await logIds(bucket, peers, types);
  await cluster.waitFor(`all ${ids.length} events delivered`, () => ids.every((id) => r.ids.has(id)), timeoutMs, 100).catch((err: Error) => {
    const missing = ids.filter((id) => !r.ids.has(id));
    throw new Error(`${err.message}: ${missing.length} missing, such as ${missing.slice(0, 3).join(" ")}`);
  });
  return ids;
}

describe("webhooks", () => {
  test("a receiver that fails its first 3 POSTs still gets every event id of the log; every POST is signed and counts its attempts", async () => {
    const BUCKET = "hooks-retry";
    await mustCreateBucket(url(0), BUCKET);
    const secret = newSecret("retry");
    const r = receiver(secret, { failFirst: 3 });
    const put = await putTargets(url(1), BUCKET, { targets: [{ id: "main", url: r.url, events: OBJECT_EVENTS, secret, maxBatch: 7 }] });
    expect(statusAndCode(put)).toBe("200");
    await writeMany(BUCKET, "k/", 80, [0, 1, 2]);
    const ids = await waitForAll(r, BUCKET, [0, 1, 2]);
    expect(ids.length).toBe(80);

    expect(r.posts.slice(0, 3).map((p) => p.status)).toEqual([500, 500, 500]);
    for (const p of r.posts) {
      expect(p.signed).toBe(true);
      expect(p.ids.length).toBeGreaterThan(0);
      expect(p.ids.length).toBeLessThanOrEqual(7);
      // The header names the records of the body, in id order, all of this bucket.
      expect(p.records.map((rec) => rec.eventId)).toEqual(p.ids);
      expect([...p.ids].sort()).toEqual(p.ids);
      for (const rec of p.records) {
        expect(rec.eventSource).toBe("meshstore:s3");
        expect(rec.s3.bucket.name).toBe(BUCKET);
        expect(rec.eventName).toMatch(/^Object(Created|Removed):/);
      }
    }
    // Per delivering peer, attempts count up after each failure and start again at 1 after a success.
    const byPeer = Map.groupBy(r.posts, (p) => p.peer);
    for (const [peer, posts] of byPeer) {
      expect(peer).toMatch(/^12D3/);
      let expected = 1;
      for (const p of posts) {
        expect(p.attempt).toBe(expected);
        expected = p.status === 200 ? 1 : expected + 1;
      }
    }
    expect(Math.max(...r.posts.map((p) => p.attempt))).toBeGreaterThanOrEqual(2);
    // Nothing was delivered that is not in the log.
    const logged = new Set(ids);
    expect([...r.ids].filter((id) => !logged.has(id))).toEqual([]);
  }, 60_000);

  test("status shows the lag, the last success, and the last error while the receiver fails; the lag goes back to 0", async () => {
    const BUCKET = "hooks-status";
    await mustCreateBucket(url(2), BUCKET);
    const secret = newSecret("status");
    const r = receiver(secret);
    expect(statusAndCode(await putTargets(url(0), BUCKET, { targets: [{ id: "s", url: r.url, events: ["ObjectCreated:Put"], secret }] }))).toBe("200");
    const fresh = await statusOf(url(1), BUCKET, "s");
    expect(fresh).toEqual({ id: "s", lag: 0, lagCapped: false, lastSuccessMs: null, lastError: null, failing: false });

    // 8 puts and 2 deletes (not sent: the target wants puts only).
    await writeMany(BUCKET, "a/", 10, [0, 1, 2]);
    await waitForAll(r, BUCKET, [0, 1, 2], 30_000, ["ObjectCreated:Put"]);
    await cluster.waitFor("lag 0 after delivery", async () => (await statusOf(url(2), BUCKET, "s")).lag === 0);
    const ok = await statusOf(url(0), BUCKET, "s");
    expect(ok.lastSuccessMs).toBeNumber();
    expect(ok.failing).toBe(false);

    r.failing = true;
    const failedFrom = Date.now();
    for (let i = 0; i < 5; i++) expect(statusAndCode(await putObject(anyOf([0, 1, 2]), BUCKET, `b/${i}`, "x"))).toBe("200");
    let seen: Status | undefined;
    await cluster.waitFor("status shows the failure and a lag of 5", async () => {
      seen = await statusOf(anyOf([0, 1, 2]), BUCKET, "s");
      return seen.failing && seen.lag === 5;
    }, 15_000);
    expect(seen!.lastError!.message).toContain("HTTP 500");
    expect(seen!.lastError!.atMs).toBeGreaterThanOrEqual(failedFrom);
    expect(seen!.oldestPendingMs).toBeGreaterThanOrEqual(failedFrom - 1000);
    // No success since the receiver began failing.
    expect(seen!.lastSuccessMs!).toBeLessThanOrEqual(failedFrom);

    r.failing = false;
    const healedAt = Date.now();
    await cluster.waitFor("lag back to 0", async () => {
      seen = await statusOf(anyOf([0, 1, 2]), BUCKET, "s");
      return seen.lag === 0 && !seen.failing;
    }, 15_000);
    expect(seen!.lastSuccessMs!).toBeGreaterThanOrEqual(healedAt);
    // The latest error is kept after recovery, older than the success.
    expect(seen!.lastError!.atMs).toBeLessThan(seen!.lastSuccessMs!);
    expect(seen!.oldestPendingMs).toBeUndefined();
    expect((await waitForAll(r, BUCKET, [0, 1, 2], 30_000, ["ObjectCreated:Put"])).length).toBe(8 + 5);
  }, 60_000);

  test("bad targets are 400 InvalidArgument with a message naming the fault; GET never shows a secret; who may do what; a deleted bucket's targets go with it", async () => {
    const BUCKET = "hooks-bad";
    await mustCreateBucket(url(0), BUCKET);
    const secret = newSecret("bad");
    const good = { id: "ok", url: "https://example.com/hook", events: ["ObjectCreated:*"], secret };
    const cases: Array<[string, unknown, RegExp]> = [
      ["not JSON", "{targets:", /not valid JSON/],
      ["not an object", [good], /the body must be/],
      ["no targets", {}, /targets must be an array/],
      ["unknown body field", { targets: [], extra: 1 }, /unknown field "extra"/],
      ["a target that is a string", { targets: ["http://x"] }, /targets\[0\]: must be an object/],
      ["unknown target field", { targets: [{ ...good, event: ["*"] }] }, /targets\[0\]: unknown field "event"/],
      ["ftp: URL", { targets: [{ ...good, url: "ftp://example.com/x" }] }, /targets\[0\]\.url: .*http:\/\/ or https:\/\/ URL, not ftp:/],
      ["file: URL", { targets: [{ ...good, url: "file:///etc/passwd" }] }, /targets\[0\]\.url: .*not file:/],
      ["javascript: URL", { targets: [{ ...good, url: "javascript:alert(1)" }] }, /targets\[0\]\.url: .*not javascript:/],
      ["relative URL", { targets: [{ ...good, url: "/hook" }] }, /targets\[0\]\.url: "\/hook" is not a URL/],
      ["URL with a password", { targets: [{ ...good, url: "https://u:p@example.com/" }] }, /user name or password/],
      ["URL too long", { targets: [{ ...good, url: `https://example.com/${"a".repeat(2100)}` }] }, /longer than 2048/],
      ["URL not a string", { targets: [{ ...good, url: 42 }] }, /targets\[0\]\.url: must be a string/],
      ["bad id", { targets: [{ ...good, id: "a b" }] }, /targets\[0\]\.id: must be 1 to 64/],
      ["missing id", { targets: [{ ...good, id: undefined }] }, /targets\[0\]\.id/],
      ["duplicate ids", { targets: [good, { ...good }] }, /two targets have the id "ok"/],
      ["no events", { targets: [{ ...good, events: [] }] }, /targets\[0\]\.events: must be a non-empty array/],
      ["unknown event type", { targets: [{ ...good, events: ["ObjectCreated:Nope"] }] }, /targets\[0\]: unknown event type/],
      ["maxBatch 0", { targets: [{ ...good, maxBatch: 0 }] }, /targets\[0\]\.maxBatch: must be a whole number from 1 to 100/],
      ["maxBatch 1e9", { targets: [{ ...good, maxBatch: 1e9 }] }, /maxBatch/],
      ["maxBatch 2.5", { targets: [{ ...good, maxBatch: 2.5 }] }, /maxBatch/],
      ["maxBatch a string", { targets: [{ ...good, maxBatch: "10" }] }, /maxBatch/],
      ["missing secret", { targets: [{ ...good, secret: undefined }] }, /targets\[0\]\.secret: is required/],
      ["empty secret", { targets: [{ ...good, secret: "" }] }, /secret: is required/],
      ["secret too long", { targets: [{ ...good, secret: "s".repeat(257) }] }, /secret: is required: a string of 1 to 256/],
      ["prefix not a string", { targets: [{ ...good, prefix: 3 }] }, /targets\[0\]\.prefix: must be a string/],
      ["too many targets", { targets: Array.from({ length: 11 }, (_, i) => ({ ...good, id: `t${i}` })) }, /at most 10 targets; got 11/],
      ["a huge body", { targets: [{ ...good, prefix: "p".repeat(70_000) }] }, /larger than 65536 bytes/],
    ];
    for (const [what, body, message] of cases) {
      const r = await putTargets(url(1), BUCKET, body);
      expect(`${what}: ${statusAndCode(r)}`).toBe(`${what}: 400 InvalidArgument`);
      expect(`${what}: ${errorOf(r).message}`).toMatch(new RegExp(`^${what}: .*${message.source}`));
    }
    // None of them stored anything.
    expect(json(await request(url(2), "GET", `/buckets/${BUCKET}/notifications`))).toEqual({ targets: [] });

    const ok = await putTargets(url(1), BUCKET, { targets: [good, { ...good, id: "second", events: ["s3:ObjectRemoved:*"], prefix: "logs/", maxBatch: 100 }] });
    expect(statusAndCode(ok)).toBe("200");
    for (const reply of [ok, await request(url(0), "GET", `/buckets/${BUCKET}/notifications`), await request(url(2), "GET", `/buckets/${BUCKET}/notifications/status`)]) {
      const text = new TextDecoder().decode(reply.body);
      expect(text).not.toContain(secret);
      expect(text).not.toContain("ecret");
    }
    const shown = json<{ targets: Array<Record<string, unknown>> }>(await request(url(2), "GET", `/buckets/${BUCKET}/notifications`)).targets;
    expect(shown.map(({ createdMs, ...t }) => (expect(createdMs).toBeNumber(), t))).toEqual([
      { id: "ok", url: good.url, events: ["ObjectCreated:*"], maxBatch: 10 },
      { id: "second", url: good.url, events: ["ObjectRemoved:*"], prefix: "logs/", maxBatch: 100 },
    ]);

    // A bucket that does not exist; a reader may see status but not the targets; DELETE removes them.
    const missing: Reply[] = [await putTargets(url(0), "no-such-bucket", { targets: [good] }), await request(url(0), "GET", "/buckets/no-such-bucket/notifications/status")];
    for (const r of missing) expect(statusAndCode(r)).toBe("404 NoSuchBucket");
    const reader = await createKey(url(0), { name: "hook-reader", buckets: { [BUCKET]: "read" } });
    const asReader = { authorization: bearer(reader.token) };
    expect(statusAndCode(await putTargets(url(1), BUCKET, { targets: [] }, asReader))).toBe("403 AccessDenied");
    expect(statusAndCode(await request(url(1), "GET", `/buckets/${BUCKET}/notifications`, { headers: asReader }))).toBe("403 AccessDenied");
    expect(statusAndCode(await request(url(1), "GET", `/buckets/${BUCKET}/notifications/status`, { headers: asReader }))).toBe("200");
    expect(statusAndCode(await request(url(2), "DELETE", `/buckets/${BUCKET}/notifications`))).toBe("204");
    expect(json(await request(url(0), "GET", `/buckets/${BUCKET}/notifications`))).toEqual({ targets: [] });
    // Deleting the bucket takes its targets with it: a new bucket of the same name starts with none.
    expect(statusAndCode(await putTargets(url(1), BUCKET, { targets: [good] }))).toBe("200");
    expect(statusAndCode(await request(url(1), "DELETE", `/buckets/${BUCKET}`))).toBe("204");
    expect(statusAndCode(await request(url(0), "GET", `/buckets/${BUCKET}/notifications`))).toBe("404 NoSuchBucket");
    await mustCreateBucket(url(2), BUCKET);
    expect(json(await request(url(0), "GET", `/buckets/${BUCKET}/notifications`))).toEqual({ targets: [] });
  }, 30_000);

  test("killing a peer that is delivering mid-stream: the others deliver the rest, with no gap", async () => {
    const BUCKET = "hooks-kill";
    await mustCreateBucket(url(0), BUCKET);
    const secret = newSecret("kill");
    // A slow receiver and small batches keep deliveries in flight while the peer dies.
    const r = receiver(secret, { delayMs: 30 });
    expect(statusAndCode(await putTargets(url(0), BUCKET, { targets: [{ id: "k", url: r.url, events: OBJECT_EVENTS, secret, maxBatch: 3 }] }))).toBe("200");
    // The victim delivers some shards; writes go through the others, before and after it dies.
    const victim = 1 + Math.floor(cluster.random() * 2);
    const victimId = cluster.peers[victim].id;
    const survivors = [0, 1, 2].filter((i) => i !== victim);
    const writing = writeMany(BUCKET, "k/", 300, survivors, 4);
    // Killed while a POST of its own is being answered: that batch reaches the receiver, but the victim never learns it.
    await cluster.waitFor("deliveries under way, one from the victim right now", () => r.ids.size >= 30 && (r.answering.get(victimId) ?? 0) > 0, 20_000, 1);
    const shardOf = (rec: { s3: { object: { key: string } } }) => objectShard(BUCKET, decodeURIComponent(rec.s3.object.key.replace(/\+/g, " ")), 32);
    const victimShards = new Set(r.posts.filter((p) => p.peer === victimId).flatMap((p) => p.records.map(shardOf)));
    await cluster.kill(victim);
    const killedAt = Date.now();
    await writing;
    const ids = await waitForAll(r, BUCKET, survivors, 40_000);
    expect(ids.length).toBe(300);

    // The victim's shards were taken over: their events after the kill came from the others.
    const takenOver = r.posts.filter((p) => p.atMs > killedAt && p.peer !== victimId && p.records.some((rec) => victimShards.has(shardOf(rec))));
    expect(takenOver.length).toBeGreaterThan(0);
    expect(r.posts.every((p) => p.signed)).toBe(true);
    const deliveredIds = r.posts.filter((p) => p.status === 200).reduce((n, p) => n + p.ids.length, 0);
    const pendingAtKill = ids.filter((id) => Number(id.slice(0, 13)) <= killedAt && !r.posts.some((p) => p.atMs <= killedAt && p.ids.includes(id))).length;
    console.log(`kill: ${ids.length} events, ${r.posts.length} POSTs, ${deliveredIds - r.ids.size} duplicate deliveries, ${pendingAtKill} events written but not yet delivered when the peer died, ${takenOver.length} POSTs of its shards from the others after`);

    await cluster.restart(victim);
    await cluster.waitFor("all alive again", () => cluster.allSee([0, 1, 2], [0, 1, 2], "alive"), 20_000);
  }, 120_000);
});
