// Conditional writes decided by a consensus round per key (issue 17, item 2;
// src/metadata/consensus.ts), with AWS SDK clients against a real 3-peer mesh:
//   - 20 clients through 3 peers race If-None-Match: * on one key, 200 times: exactly one
//     winner a round, every loser 412 or 409, and the winner's body is what a peer reads;
//   - a compare-and-swap counter (GET, then PUT If-Match its ETag) incremented 500 times
//     through random peers ends at exactly 500, and the whole history (every read and
//     write, with its times) passes a checker: the successful writes form one chain
//     0 -> 1 -> ... -> 500, ordered as they happened, and no read returns a value older
//     than one acknowledged before it began;
//   - the same counter while one replica is killed and restarted;
//   - conditional deletes (If-Match, x-amz-if-match-size, x-amz-if-match-last-modified-time,
//     and inside DeleteObjects), CopyObject and CompleteMultipartUpload with conditions.
// Peers, keys and delays come from the cluster's seed (MESH_TEST_SEED reproduces a run).
import { afterAll, beforeAll, expect, test } from "bun:test";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { bodyBytes, createKey, s3Client, sdkFailure } from "../harness/s3.ts";

let cluster: Cluster;
let clients: S3Client[];
beforeAll(async () => {
  cluster = await startConverged(3);
  clients = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, undefined, { maxAttempts: 1 }));
  await clients[0].send(new CreateBucketCommand({ Bucket: "cas" }));
});
afterAll(async () => {
  for (const c of clients ?? []) c.destroy();
  await teardownCluster(cluster);
});

const pick = <T>(xs: T[]): T => xs[Math.floor(cluster.random() * xs.length)];
const text = async (body: unknown) => new TextDecoder().decode(await bodyBytes(body));
/** "200", or the failure's status and S3 code. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "200";
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    return `${e.$metadata?.httpStatusCode} ${e.name}`;
  }
}

test("20 clients through 3 peers race If-None-Match: * on one key, 200 times: exactly one winner each time", async () => {
  const tally = new Map<string, number>();
  for (let round = 0; round < 200; round++) {
    await pick(clients).send(new DeleteObjectCommand({ Bucket: "cas", Key: "lock" }));
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => outcome(clients[i % 3].send(new PutObjectCommand({ Bucket: "cas", Key: "lock", Body: `round ${round} client ${i}`, IfNoneMatch: "*" })))),
    );
    for (const r of results) tally.set(r, (tally.get(r) ?? 0) + 1);
    const winners = results.flatMap((r, i) => (r === "200" ? [i] : []));
    const losers = results.filter((r) => r !== "200");
    if (winners.length !== 1) throw new Error(`round ${round}: ${winners.length} winners (${results.join(", ")})`);
    for (const r of losers) expect(["412 PreconditionFailed", "409 ConditionalRequestConflict"]).toContain(r);
    // A random peer reads the winner's body (every peer does in the last round).
    for (const c of round === 199 ? clients : [pick(clients)]) expect(await text((await c.send(new GetObjectCommand({ Bucket: "cas", Key: "lock" }))).Body)).toBe(`round ${round} client ${winners[0]}`);
  }
  console.log(`If-None-Match race: ${JSON.stringify(Object.fromEntries(tally))}`);
}, 120_000);

/** One operation of the counter's history. */
interface Op {
  kind: "read" | "write";
  start: number;
  end: number;
  /** read: the value read; write: the value written. */
  value: number;
  /** write: the value it was conditioned on. */
  from?: number;
  /** write: acknowledged (true), refused (false), or unknown (the peer went away mid-call). */
  ok: boolean | "unknown";
}

/**
 * Count the counter under `key` up to `target` with `workers` clients through random peers
 * (GET; stop at the target, else PUT If-Match the ETag read), recording every operation;
 * `during` runs alongside.
 */
async function casCounter(key: string, target: number, workers: number, during?: () => Promise<void>): Promise<Op[]> {
  await clients[0].send(new PutObjectCommand({ Bucket: "cas", Key: key, Body: "0" }));
  const history: Op[] = [];
  let reached = false;
  const worker = async () => {
    while (!reached) {
      const c = pick(clients);
      const t0 = performance.now();
      let got: { value: number; etag: string };
      try {
        const r = await c.send(new GetObjectCommand({ Bucket: "cas", Key: key }));
        got = { value: Number(await text(r.Body)), etag: r.ETag! };
      } catch {
        continue; // a read through a peer being killed: try another
      }
      history.push({ kind: "read", start: t0, end: performance.now(), value: got.value, ok: true });
      if (got.value >= target) {
        reached = true;
        break;
      }
      const t1 = performance.now();
      const result = await outcome(pick(clients).send(new PutObjectCommand({ Bucket: "cas", Key: key, Body: String(got.value + 1), IfMatch: got.etag })));
      // 412: not written. 409 (a round of ours may have landed, then been overwritten) and a call cut off
      // with its peer (killed mid-call): written or not, the caller cannot tell.
      const inDoubt = ["409 ConditionalRequestConflict", "503 ServiceUnavailable"].includes(result) || (during !== undefined && result !== "412 PreconditionFailed");
      const ok = result === "200" ? true : inDoubt ? "unknown" : false;
      if (ok === false && result !== "412 PreconditionFailed") throw new Error(`CAS write: ${result}`);
      history.push({ kind: "write", start: t1, end: performance.now(), value: got.value + 1, from: got.value, ok });
    }
  };
  await Promise.all([...Array.from({ length: workers }, worker), during?.()]);
  return history;
}

/**
 * The checker: acknowledged writes form one chain from 0 (each value once, each written on
 * the one before it; a value missing from the acknowledged ones must have a write of unknown
 * outcome), in real-time order; reads are never older than an acknowledged write.
 */
function checkHistory(history: Op[], target: number): void {
  const wins = history.filter((o) => o.kind === "write" && o.ok === true).sort((a, b) => a.value - b.value);
  const maybe = new Set(history.filter((o) => o.kind === "write" && o.ok === "unknown").map((o) => o.value));
  const values = wins.map((w) => w.value);
  // Never two winners from one value.
  for (let i = 1; i < wins.length; i++) {
    if (wins[i].value === wins[i - 1].value) throw new Error(`two acknowledged writes of ${wins[i].value}: ${JSON.stringify([wins[i - 1], wins[i]])}`);
  }
  for (let v = 1; v <= target; v++) if (!values.includes(v) && !maybe.has(v)) throw new Error(`no write of ${v} was acknowledged or in doubt`);
  expect(Math.max(...values, ...maybe)).toBe(target);
  for (const w of wins) expect(w.from).toBe(w.value - 1);
  // Real time: a write acknowledged before another began has the smaller value.
  const byEnd = [...wins].sort((a, b) => a.end - b.end);
  let floor = 0;
  let i = 0;
  for (const w of [...wins].sort((a, b) => a.start - b.start)) {
    while (i < byEnd.length && byEnd[i].end < w.start) floor = Math.max(floor, byEnd[i++].value);
    if (w.value <= floor) throw new Error(`write of ${w.value} began after ${floor} was acknowledged`);
  }
  // Reads: at least every value acknowledged before the read began; at most one whose write (acknowledged or in doubt) had begun before it ended.
  for (const r of history.filter((o) => o.kind === "read")) {
    const acked = Math.max(0, ...wins.filter((w) => w.end < r.start).map((w) => w.value));
    const begun = Math.max(0, ...history.filter((w) => w.kind === "write" && w.ok !== false && w.start < r.end).map((w) => w.value));
    if (r.value < acked || r.value > begun) throw new Error(`a read over [${r.start.toFixed(1)}, ${r.end.toFixed(1)}] returned ${r.value}: acknowledged ${acked}, begun ${begun}`);
  }
}

test("a compare-and-swap counter incremented 500 times through random peers ends at exactly 500; its history checks", async () => {
  const history = await casCounter("counter", 500, 3);
  checkHistory(history, 500);
  for (const c of clients) expect(await text((await c.send(new GetObjectCommand({ Bucket: "cas", Key: "counter" }))).Body)).toBe("500");
  const writes = history.filter((o) => o.kind === "write");
  console.log(`CAS counter: ${writes.length} conditional PUTs for 500 increments`);
}, 120_000);

test("the counter still ends exact while one replica is killed and restarted", async () => {
  const victim = 2;
  const history = await casCounter("counter-kill", 500, 3, async () => {
    await Bun.sleep(300);
    await cluster.kill(victim);
    await Bun.sleep(500);
    await cluster.restart(victim);
    clients[victim].destroy();
    clients[victim] = s3Client(cluster.peer(victim).s3Url, undefined, { maxAttempts: 1 });
  });
  checkHistory(history, 500);
  await cluster.waitFor("the restarted peer reads the final count", async () => (await text((await clients[victim].send(new GetObjectCommand({ Bucket: "cas", Key: "counter-kill" }))).Body).catch(() => "")) === "500", 15_000);
}, 120_000);

test("conditional deletes, copies and multipart completes: the condition holds or nothing is written", async () => {
  const c = clients[0];
  const put = await clients[1].send(new PutObjectCommand({ Bucket: "cas", Key: "d", Body: "hello" }));
  const head = await c.send(new HeadObjectCommand({ Bucket: "cas", Key: "d" }));
  // DeleteObject: wrong ETag, size or time refused; right ones delete.
  expect((await sdkFailure("wrong etag", c.send(new DeleteObjectCommand({ Bucket: "cas", Key: "d", IfMatch: '"0000"' })))).status).toBe(412);
  expect((await sdkFailure("wrong size", c.send(new DeleteObjectCommand({ Bucket: "cas", Key: "d", IfMatchSize: 4 })))).status).toBe(412);
  expect((await sdkFailure("wrong time", c.send(new DeleteObjectCommand({ Bucket: "cas", Key: "d", IfMatchLastModifiedTime: new Date(head.LastModified!.getTime() - 5000) })))).status).toBe(412);
  await c.send(new DeleteObjectCommand({ Bucket: "cas", Key: "d", IfMatch: put.ETag, IfMatchSize: 5, IfMatchLastModifiedTime: head.LastModified }));
  expect((await sdkFailure("gone", clients[2].send(new HeadObjectCommand({ Bucket: "cas", Key: "d" })))).status).toBe(404);
  // If-Match on no object: 404 NoSuchKey.
  expect(await outcome(c.send(new PutObjectCommand({ Bucket: "cas", Key: "d", Body: "x", IfMatch: put.ETag })))).toBe("404 NoSuchKey");

  // DeleteObjects: per-key conditions, each decided on its own.
  const a = await c.send(new PutObjectCommand({ Bucket: "cas", Key: "a", Body: "a" }));
  await c.send(new PutObjectCommand({ Bucket: "cas", Key: "b", Body: "b" }));
  const res = await c.send(DeleteObjects({ a: a.ETag!, b: '"ffff"' }));
  expect(res.Deleted?.map((d) => d.Key)).toEqual(["a"]);
  expect(res.Errors?.map((e) => `${e.Key} ${e.Code}`)).toEqual(["b PreconditionFailed"]);

  // CopyObject with If-None-Match: * onto an existing key is refused; onto a new one, done.
  expect(await outcome(c.send(new CopyObjectCommand({ Bucket: "cas", Key: "b", CopySource: "cas/lock", IfNoneMatch: "*" })))).toBe("412 PreconditionFailed");
  expect(await outcome(c.send(new CopyObjectCommand({ Bucket: "cas", Key: "b2", CopySource: "cas/lock", IfNoneMatch: "*" })))).toBe("200");

  // CompleteMultipartUpload with If-None-Match: * onto an existing key is refused, and the upload stays open for another try.
  const up = await c.send(new CreateMultipartUploadCommand({ Bucket: "cas", Key: "b" }));
  const part = await c.send(new UploadPartCommand({ Bucket: "cas", Key: "b", UploadId: up.UploadId, PartNumber: 1, Body: "part one" }));
  const complete = (cond: { IfNoneMatch?: string; IfMatch?: string }) =>
    c.send(new CompleteMultipartUploadCommand({ Bucket: "cas", Key: "b", UploadId: up.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }, ...cond }));
  expect(await outcome(complete({ IfNoneMatch: "*" }))).toBe("412 PreconditionFailed");
  const current = await c.send(new HeadObjectCommand({ Bucket: "cas", Key: "b" }));
  expect(await outcome(complete({ IfMatch: current.ETag }))).toBe("200");
  expect(await text((await clients[2].send(new GetObjectCommand({ Bucket: "cas", Key: "b" }))).Body)).toBe("part one");

  // Only * for If-None-Match on a write.
  expect(await outcome(c.send(new PutObjectCommand({ Bucket: "cas", Key: "z", Body: "z", IfNoneMatch: '"abc"' })))).toBe("501 NotImplemented");
});

test("two keys racing to create the same 100 bucket names through different peers: each name has exactly one owner", async () => {
  const [alice, bob] = await Promise.all([createKey(cluster.peer(0).httpUrl, { name: "alice", create: true }), createKey(cluster.peer(1).httpUrl, { name: "bob", create: true })]);
  const as = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, alice, { maxAttempts: 1 }));
  const bs = [0, 1, 2].map((i) => s3Client(cluster.peer(i).s3Url, bob, { maxAttempts: 1 }));
  try {
    for (let n = 0; n < 100; n++) {
      const Bucket = `race-${n}`;
      const [a, b] = await Promise.all([outcome(pick(as).send(new CreateBucketCommand({ Bucket }))), outcome(pick(bs).send(new CreateBucketCommand({ Bucket })))]);
      expect([a, b].sort()).toEqual(["200", "409 BucketAlreadyExists"]);
      // The winner owns it: it may write there; the loser may not.
      const [winner, loser] = a === "200" ? [as, bs] : [bs, as];
      expect(await outcome(pick(winner).send(new PutObjectCommand({ Bucket, Key: "k", Body: "mine" })))).toBe("200");
      expect(await outcome(pick(loser).send(new PutObjectCommand({ Bucket, Key: "k", Body: "mine too" })))).toBe("403 AccessDenied");
    }
  } finally {
    for (const c of [...as, ...bs]) c.destroy();
  }
});

/** A DeleteObjects of keys, each conditioned on an ETag. */
function DeleteObjects(etags: Record<string, string>) {
  return new DeleteObjectsCommand({ Bucket: "cas", Delete: { Objects: Object.entries(etags).map(([Key, ETag]) => ({ Key, ETag })) } });
}
