// A peer killed with SIGKILL right after acknowledging writes loses no event of them
// (issue 16). Three `bun run node` processes; PUTs, overwrites and deletes go through
// peer A, eight at a time, and A is killed the moment it acknowledges the last counted
// one, with the others still in flight. Then:
//  - the event log read through B and C holds one event for every acknowledged operation,
//    each key's in the order they were made (an operation cut off in flight may add one);
//  - A's own index, opened while A is down, holds every object row it has together with
//    that write's event (one atomic batch: no row without its event);
//  - A, restarted, serves the same log.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULTS } from "../../src/config.ts";
import { deletesAreFinal, allObjectShards, BUCKETS_SHARD, eventRow, objectRowPrefix } from "../../src/metadata/keys.ts";
import type { LoggedEvent } from "../../src/changes/records.ts";
import { openIndexStore } from "../../src/store/index-store.ts";
import { spawnPeer, type PeerProcess } from "../harness/process.ts";
import { deleteObject, errorOf, json, mustCreateBucket, putObject, request, statusAndCode } from "../harness/http.ts";
import { mulberry32 } from "../harness/random.ts";

const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-event-crash-"));
const procs: PeerProcess[] = [];
afterAll(() => {
  for (const p of procs) p.proc.kill("SIGKILL");
  rmSync(root, { recursive: true, force: true });
});

const BUCKET = "crashlog";
/** Operations acknowledged before the kill. */
const ACKED = 400;
const WRITERS = 8;
/** Keys per writer: each key's operations are one writer's, one at a time, so their order is the order acknowledged. */
const KEYS_PER_WRITER = 12;
/** The peers' index shards (the default). */
const INDEX_SHARDS = DEFAULTS.indexShards;

/** Start peer `i` of the mesh (the first makes the mesh key; the others join it). */
async function start(i: number, bootstrap?: PeerProcess): Promise<PeerProcess> {
  const args = ["--data", path.join(root, `p${i}`), "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"];
  const peer = await spawnPeer(bootstrap ? [...args, "--bootstrap", bootstrap.p2p[0], "--mesh-key", path.join(root, "p0", "mesh.key")] : args, { timeoutMs: 30_000 });
  procs.push(peer);
  return peer;
}

/** Wait until every peer in `peers` sees `n` members alive. */
async function converged(peers: PeerProcess[], n: number): Promise<void> {
  const alive = async (p: PeerProcess) => ((await (await fetch(`${p.http}/cluster/status`)).json()) as { peers: { alive: number } }).peers.alive;
  for (let t = 0; t < 300; t++) {
    if ((await Promise.all(peers.map(alive))).every((a) => a >= n)) return;
    await Bun.sleep(100);
  }
  throw new Error(`the mesh did not converge on ${n} alive members`);
}

/** An event as the API answers it (the fields looked at here). */
interface EventRecord {
  eventName: string;
  eventId: string;
  s3: { object: { key: string; eTag?: string } };
}

/** Read the bucket's log from the start through `bases` in turn until the cursor passes `untilMs` (every write acknowledged before it). */
async function readLog(bases: string[], untilMs: number): Promise<EventRecord[]> {
  const events: EventRecord[] = [];
  let cursor = "";
  for (let reads = 0; reads < 2000; reads++) {
    const base = bases[reads % bases.length];
    const r = await request(base, "GET", `/buckets/${BUCKET}/events?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    // Right after the kill a read may still wait on the dead peer; it is tried again.
    if (r.status >= 500) {
      await Bun.sleep(200);
      continue;
    }
    if (r.status !== 200) throw new Error(`events via ${base}: ${statusAndCode(r)} ${errorOf(r).message}`);
    const page = json<{ events: EventRecord[]; cursor: string }>(r);
    events.push(...page.events);
    cursor = page.cursor;
    if (Number(cursor.slice(0, 13)) > untilMs) return events;
    if (!page.events.length) await Bun.sleep(100);
  }
  throw new Error("the log was not read past the kill within 2000 reads");
}

/** What an operation's event looks like: "put <etag>" or "delete". */
const opOf = (e: EventRecord) => (e.eventName === "ObjectRemoved:Delete" ? "delete" : `put ${e.s3.object.eTag}`);

/** Check `events` against the acknowledged operations: each key's acknowledged operations in order, with at most one more (the one cut off) at the end. */
function checkLog(events: EventRecord[], acked: Map<string, string[]>, inFlight: Map<string, string>): void {
  expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
  const perKey = new Map<string, string[]>();
  for (const e of events) {
    if (e.eventName === "BucketCreated") continue;
    const key = decodeURIComponent(e.s3.object.key.replace(/\+/g, " "));
    perKey.set(key, [...(perKey.get(key) ?? []), opOf(e)]);
  }
  for (const [key, ops] of acked) {
    const got = perKey.get(key) ?? [];
    const cut = inFlight.get(key);
    // The operation in flight at the kill may or may not have landed: nothing else may differ.
    if (cut !== undefined && got.length === ops.length + 1) expect(got).toEqual([...ops, cut]);
    else expect(got).toEqual(ops);
  }
  for (const key of perKey.keys()) expect(acked.has(key) || inFlight.has(key)).toBe(true);
}

test("SIGKILL right after acknowledging writes: every acknowledged operation keeps its event, through the others and through the restarted peer", async () => {
  const a = await start(0);
  // Both join through A at once (each start is a few seconds of `bun run node` on a loaded machine).
  const joined = await Promise.allSettled([start(1, a), start(2, a)]);
  for (const r of joined) if (r.status === "rejected") throw r.reason;
  const [b, c] = joined.map((r) => (r as PromiseFulfilledResult<PeerProcess>).value);
  await converged([a, b, c], 3);
  await mustCreateBucket(a.http, BUCKET);

  const random = mulberry32(16);
  /** Per key, the operations A acknowledged, in order. */
  const acked = new Map<string, string[]>();
  /** Per key, the operation in flight when A was killed. */
  const inFlight = new Map<string, string>();
  let count = 0;
  let killedAt = 0;
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let n = 0; !killedAt; n++) {
      const key = `w${w}/k${Math.floor(random() * KEYS_PER_WRITER)}${w % 3 === 0 ? " é+%" : ""}`;
      const remove = (acked.get(key)?.length ?? 0) > 0 && random() < 0.25;
      const body = `w${w} n${n} ${"x".repeat(Math.floor(random() * 3000))}`;
      const expected = remove ? "delete" : `put ${new Bun.CryptoHasher("md5").update(body).digest("hex")}`;
      inFlight.set(key, expected);
      let status: number;
      let etag: string | undefined;
      try {
        const r = remove ? await deleteObject(a.http, BUCKET, key) : await putObject(a.http, BUCKET, key, body);
        status = r.status;
        etag = remove ? undefined : json<{ etag: string }>(r).etag;
      } catch {
        return; // A is gone: this operation was not acknowledged
      }
      if (killedAt) return; // answered after the kill: left as in flight
      if (status !== (remove ? 204 : 200)) throw new Error(`${remove ? "DELETE" : "PUT"} ${key}: ${status}`);
      inFlight.delete(key);
      acked.set(key, [...(acked.get(key) ?? []), remove ? "delete" : `put ${etag}`]);
      expect(remove ? "delete" : `put ${etag}`).toBe(expected);
      if (++count === ACKED) {
        // The moment the last counted acknowledgement is in: nothing after it is counted.
        a.proc.kill("SIGKILL");
        killedAt = Date.now();
      }
    }
  });
  await Promise.all(writers);
  await a.proc.exited;
  const deletes = [...acked.values()].flat().filter((op) => op === "delete").length;
  expect(count).toBe(ACKED);
  expect(deletes).toBeGreaterThan(20);

  // Through the survivors.
  const survivors = await readLog([b.http, c.http], killedAt);
  checkLog(survivors, acked, inFlight);

  // A's own index, while A is down: every object row it holds came with its event in one batch.
  const store = await openIndexStore(path.join(root, "p0", "index"), { deletesAreFinal });
  let rows = 0;
  let ownEvents = 0;
  const ackedIds = new Set(survivors.map((e) => e.eventId));
  try {
    for (const shard of [...allObjectShards(INDEX_SHARDS), BUCKETS_SHARD]) {
      const bucketRow = shard === BUCKETS_SHARD ? await store.get(shard, BUCKET) : null;
      const objectRows = shard === BUCKETS_SHARD ? (bucketRow ? [[BUCKET, bucketRow] as const] : []) : await store.scan(shard, { prefix: objectRowPrefix(BUCKET), limit: 100_000 });
      for (const [row, entry] of objectRows) {
        rows++;
        const event = await store.get(shard, eventRow(BUCKET, entry.ts));
        const name = shard === BUCKETS_SHARD ? "BucketCreated" : entry.value === null ? "ObjectRemoved:Delete" : "ObjectCreated:Put";
        // Named by its row, so a failure says which write lost its event.
        expect({ row, event: (event?.value as LoggedEvent | undefined)?.name ?? "none" }).toEqual({ row, event: name });
      }
      for (const [row] of await store.scan(shard, { prefix: eventRow(BUCKET, ""), limit: 100_000 })) if (ackedIds.has(row.slice(eventRow(BUCKET, "").length))) ownEvents++;
    }
  } finally {
    await store.close();
  }
  expect(rows).toBeGreaterThan(0);

  // A again, reading through it.
  const again = await start(0, b);
  await converged([again, b, c], 3);
  const restarted = await readLog([again.http], killedAt);
  checkLog(restarted, acked, inFlight);
  // The same log, but for operations cut off in flight that reached only A's disk: A brings
  // them back (they were never acknowledged, so they may or may not have happened).
  const survivorIds = new Set(survivors.map((e) => e.eventId));
  expect(restarted.filter((e) => survivorIds.has(e.eventId)).map((e) => e.eventId)).toEqual(survivors.map((e) => e.eventId));
  expect(restarted.length - survivors.length).toBeLessThanOrEqual(inFlight.size);
  console.log(
    `event crash: ${ACKED} operations acknowledged (${deletes} deletes) then SIGKILL; ${survivors.length} events through the survivors and the restarted peer (${survivors.length - 1 - ACKED} cut off in flight); A's own disk held ${ownEvents} of them, ${rows} object rows each with its event`,
  );
}, 120_000);
