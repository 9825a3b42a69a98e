// Live change streams on a real 3-peer mesh (issue 16): the native API's Server-Sent Events
// (a consumer that disconnects after 100 events and resumes through another peer with
// Last-Event-ID gets exactly the rest, then new writes live; pings; from=now; filters; bad
// input refused before the stream starts; the per-peer cap; streams do not hold request
// slots and end with their client or their peer) and MinIO's ListenBucketNotification on
// the S3 port with a real SigV4-signed request.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus, deleteObject, errorOf, mapLimit, mustCreateBucket, putObject, request, statusAndCode } from "../harness/http.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { s3ErrorOf, signer } from "../harness/s3.ts";
import { waitFor } from "../harness/wait.ts";

/** Short enough for a test to see several; the default is 10 s. */
const PING_MS = 400;
/** Streams per peer in this file: small, so the cap is tested. */
const MAX_STREAMS = 4;

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startConverged(3, { config: { events: { settleMs: 500, streamPingMs: PING_MS, maxStreams: MAX_STREAMS } } });
});
afterAll(() => teardownCluster(cluster));
// A test that fails midway leaves no stream open to take a place in the next one's cap.
afterEach(() => {
  for (const r of readers.splice(0)) r.close();
});

const url = (i: number) => cluster.peer(i).httpUrl;

/** One SSE frame: its fields and comments. */
interface Frame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comments: string[];
}

/** An S3 event record (the fields these tests look at). */
interface S3Record {
  eventName: string;
  eventId: string;
  s3: { bucket: { name: string }; object: { key: string; size?: number } };
}

/**
 * A streaming response read as it arrives, split into pieces by `parse` (SSE frames, JSON
 * lines); `next` waits for the next piece, failing after `ms` or when the stream ends.
 */
class Reader<T> {
  readonly pieces: T[] = [];
  private wake: (() => void) | undefined;
  ended = false;
  error: unknown;
  /** Everything received, as text. */
  raw = "";
  private buffer = "";

  constructor(
    readonly response: Response,
    private readonly aborter: AbortController,
    private readonly split: (buffer: string) => { pieces: T[]; rest: string },
  ) {
    void this.pump();
  }

  private async pump() {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body!) {
        const text = decoder.decode(chunk, { stream: true });
        this.raw += text;
        const { pieces, rest } = this.split(this.buffer + text);
        this.buffer = rest;
        this.pieces.push(...pieces);
        this.wake?.();
      }
    } catch (err) {
      this.error = err;
    }
    this.ended = true;
    this.wake?.();
  }

  async next(ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    while (!this.pieces.length) {
      if (this.ended) throw new Error(`the stream ended${this.error ? ` (${String(this.error)})` : ""}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing arrived within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.pieces.shift()!;
  }

  close() {
    this.aborter.abort();
  }
}

/** Every stream a test opened. */
const readers: Array<Reader<unknown>> = [];

/** SSE frames (blank-line separated) of a text stream. */
function sseFrames(buffer: string): { pieces: Frame[]; rest: string } {
  const parts = buffer.split("\n\n");
  const rest = parts.pop()!;
  const pieces = parts.map((part) => {
    const frame: Frame = { comments: [] };
    for (const line of part.split("\n")) {
      if (line.startsWith(":")) frame.comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (name === "id" || name === "event" || name === "data" || name === "retry") frame[name] = value;
      }
    }
    return frame;
  });
  return { pieces, rest };
}

/** Open `GET /buckets/{b}/events/stream?query` on `base`; a non-200 answer is returned whole. */
async function openSse(base: string, bucket: string, query = "", headers: Record<string, string> = {}): Promise<Reader<Frame>> {
  const aborter = new AbortController();
  const res = await fetch(`${base}/buckets/${bucket}/events/stream${query ? `?${query}` : ""}`, { headers: { authorization: ADMIN_BEARER, ...headers }, signal: aborter.signal });
  if (res.status !== 200) throw new Error(`stream ${bucket}?${query}: ${res.status} ${await res.text()}`);
  const reader = new Reader(res, aborter, sseFrames);
  readers.push(reader);
  return reader;
}

/** The next frame that carries an event, with its record. */
async function nextEvent(s: Reader<Frame>, ms = 15_000): Promise<{ id: string; event: string; record: S3Record }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const f = await s.next(Math.max(1, deadline - Date.now()));
    if (f.data === undefined) continue;
    return { id: f.id!, event: f.event!, record: JSON.parse(f.data) as S3Record };
  }
}

const keyOf = (r: S3Record) => decodeURIComponent(r.s3.object.key.replace(/\+/g, " "));

/** How many event streams peer i has open. */
async function openStreams(i: number): Promise<number> {
  const s = (await clusterStatus(url(i))) as unknown as { eventStreams: { open: number } };
  return s.eventStreams.open;
}

describe("server-sent events", () => {
  test("a consumer that disconnects after 100 of 250 events and resumes with Last-Event-ID through another peer gets exactly the other 150, then new writes live", async () => {
    const BUCKET = "sse-resume";
    await mustCreateBucket(url(0), BUCKET);
    const keys = Array.from({ length: 250 }, (_, n) => `obj/${String(n).padStart(3, "0")}${n % 17 === 0 ? " é+%" : ""}`);
    await mapLimit(keys, 16, async (key) => {
      const r = await putObject(url(Math.floor(cluster.random() * 3)), BUCKET, key, `v-${key}`);
      if (r.status !== 200) throw new Error(`PUT ${key}: ${statusAndCode(r)}`);
    });

    const first = await openSse(url(0), BUCKET, "from=earliest&types=ObjectCreated:*");
    expect(first.response.headers.get("content-type")).toStartWith("text/event-stream");
    expect(first.response.headers.get("cache-control")).toContain("no-cache");
    const opening = await first.next();
    expect(opening.retry).toBeDefined();
    expect(opening.id).toBe("");
    const got: Array<{ id: string; key: string }> = [];
    while (got.length < 100) {
      const e = await nextEvent(first);
      expect(e.event).toBe("ObjectCreated:Put");
      expect(e.record.eventId).toBe(e.id);
      expect(e.record.s3.bucket.name).toBe(BUCKET);
      got.push({ id: e.id, key: keyOf(e.record) });
    }
    first.close();
    // The peer sees the client go: its stream ends and is no longer counted.
    await waitFor("peer 0's stream to end", async () => (await openStreams(0)) === 0);

    // Last-Event-ID wins over ?from (an EventSource reconnects to the same URL with it).
    const second = await openSse(url(1), BUCKET, "from=earliest&types=ObjectCreated:*", { "last-event-id": got[99].id });
    expect((await second.next()).id).toBe(got[99].id);
    while (got.length < 250) {
      const e = await nextEvent(second);
      got.push({ id: e.id, key: keyOf(e.record) });
    }
    expect(new Set(got.map((g) => g.id)).size).toBe(250);
    expect(got.map((g) => g.key).sort()).toEqual([...keys].sort());
    for (let i = 1; i < got.length; i++) expect(got[i].id > got[i - 1].id).toBe(true);

    // Nothing else was waiting: the next events are the writes made from now on, live.
    // Each acknowledged write reaches the stream within the settle time (500 ms here) and a poll or two.
    const lags: number[] = [];
    for (const key of ["live/1", "live/2", "live/3"]) {
      const began = Date.now();
      expect(statusAndCode(await putObject(url(2), BUCKET, key, "x"))).toBe("200");
      const acked = Date.now();
      expect(keyOf((await nextEvent(second)).record)).toBe(key);
      lags.push(Date.now() - acked);
      expect(Date.now() - began).toBeLessThan(5000);
    }
    console.log(`write acknowledged to event received: ${lags.join(", ")} ms (settle 500 ms, poll 500 ms)`);
    second.close();
    await waitFor("peer 1's stream to end", async () => (await openStreams(1)) === 0);
  }, 60_000);

  test("an idle stream pings within the ping interval, and the ping carries the position read up to", async () => {
    const BUCKET = "sse-idle";
    await mustCreateBucket(url(1), BUCKET);
    // Past the settle time, the bucket's own BucketCreated is behind "now": the stream has nothing to send.
    await Bun.sleep(1000);
    const s = await openSse(url(2), BUCKET);
    const opened = await s.next();
    const start = Date.now();
    const ping = await s.next(PING_MS + 2000);
    const took = Date.now() - start;
    console.log(`first ping after ${took} ms (ping interval ${PING_MS} ms)`);
    expect(ping.comments).toContain("ping");
    expect(ping.data).toBeUndefined();
    expect(took).toBeLessThan(PING_MS + 1500);
    // An idle log still moves the cursor: a later ping names a position past the opening one.
    let moved: string | undefined;
    for (let i = 0; i < 20 && moved === undefined; i++) {
      const f = await s.next(PING_MS + 2000);
      expect(f.comments).toContain("ping");
      if (f.id !== undefined && f.id > opened.id!) moved = f.id;
    }
    expect(moved).toBeDefined();
    s.close();
  }, 30_000);

  test("from=now skips the past; types, prefix and suffix filter the stream", async () => {
    const BUCKET = "sse-filters";
    await mustCreateBucket(url(0), BUCKET);
    for (const key of ["old/1.jpg", "new/0.jpg"]) expect(statusAndCode(await putObject(url(1), BUCKET, key, "x"))).toBe("200");
    // Past the settle time (500 ms here), those writes are behind "now".
    await Bun.sleep(1200);
    const all = await openSse(url(2), BUCKET);
    const jpgs = await openSse(url(2), BUCKET, "from=now&types=s3:ObjectCreated:*&prefix=new/&suffix=.jpg");
    // Written one at a time through one peer, so their ids follow the order they were made.
    expect(statusAndCode(await putObject(url(1), BUCKET, "new/1.txt", "x"))).toBe("200");
    expect(statusAndCode(await putObject(url(1), BUCKET, "new/2.jpg", "x"))).toBe("200");
    expect(statusAndCode(await putObject(url(1), BUCKET, "other/3.jpg", "x"))).toBe("200");
    expect(statusAndCode(await deleteObject(url(1), BUCKET, "new/2.jpg"))).toBe("204");
    expect(statusAndCode(await putObject(url(1), BUCKET, "new/9.jpg", "x"))).toBe("200");
    const seen = async (s: Reader<Frame>, n: number) => {
      const out: string[] = [];
      while (out.length < n) {
        const e = await nextEvent(s);
        out.push(`${e.event} ${keyOf(e.record)}`);
      }
      return out;
    };
    expect(await seen(all, 5)).toEqual(["ObjectCreated:Put new/1.txt", "ObjectCreated:Put new/2.jpg", "ObjectCreated:Put other/3.jpg", "ObjectRemoved:Delete new/2.jpg", "ObjectCreated:Put new/9.jpg"]);
    expect(await seen(jpgs, 2)).toEqual(["ObjectCreated:Put new/2.jpg", "ObjectCreated:Put new/9.jpg"]);
    all.close();
    jpgs.close();
    await waitFor("peer 2's streams to end", async () => (await openStreams(2)) === 0);
  }, 30_000);

  test("bad input is a 4xx JSON error before any stream starts", async () => {
    const BUCKET = "sse-bad";
    await mustCreateBucket(url(0), BUCKET);
    const get = (query: string, headers: Record<string, string> = {}) => request(url(0), "GET", `/buckets/${BUCKET}/events/stream${query}`, { headers });
    const future = `${Date.now() + 3600_000}-000000`;
    const cases: Array<[string, Promise<Awaited<ReturnType<typeof get>>>, string]> = [
      ["a Last-Event-ID that is no id", get("", { "last-event-id": "nope" }), "400 InvalidArgument"],
      ["a Last-Event-ID from the future", get("", { "last-event-id": future }), "400 InvalidArgument"],
      ["a bad from", get("?from=yesterday"), "400 InvalidArgument"],
      ["an unknown event type", get("?types=ObjectCreated:Nope"), "400 InvalidArgument"],
      ["too many event types", get(`?types=${Array(21).fill("*").join(",")}`), "400 InvalidArgument"],
      ["a prefix over 1 KiB", get(`?prefix=${"p".repeat(1025)}`), "400 InvalidArgument"],
      ["a bucket that does not exist", request(url(0), "GET", "/buckets/no-such-bucket-here/events/stream"), "404 NoSuchBucket"],
      ["a bad bucket name", request(url(0), "GET", "/buckets/Bad_Name/events/stream"), "400 InvalidBucketName"],
      ["no token", get("", { authorization: "" }), "401 Unauthorized"],
    ];
    for (const [what, reply, expected] of cases) {
      const r = await reply;
      expect(`${what}: ${statusAndCode(r)}`).toBe(`${what}: ${expected}`);
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(errorOf(r).message.length).toBeGreaterThan(0);
    }
    expect(await openStreams(0)).toBe(0);
  }, 30_000);

  test(`at most ${MAX_STREAMS} streams per peer (then 503 TooManyStreams), none of them holding a request slot`, async () => {
    const BUCKET = "sse-cap";
    await mustCreateBucket(url(2), BUCKET);
    const open = await Promise.all(Array.from({ length: MAX_STREAMS }, () => openSse(url(2), BUCKET)));
    expect(await openStreams(2)).toBe(MAX_STREAMS);
    const refused = await request(url(2), "GET", `/buckets/${BUCKET}/events/stream`);
    expect(statusAndCode(refused)).toBe("503 TooManyStreams");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    // Only the status request itself is in flight: the streams left the count when they started.
    const status = (await clusterStatus(url(2))) as unknown as { limits: { inflight: number }; eventStreams: { refused: number } };
    expect(status.limits.inflight).toBe(1);
    expect(status.eventStreams.refused).toBeGreaterThanOrEqual(1);
    open[0].close();
    await waitFor("a slot to free up", async () => (await openStreams(2)) === MAX_STREAMS - 1);
    open[0] = await openSse(url(2), BUCKET);
    for (const s of open) s.close();
    await waitFor("peer 2's streams to end", async () => (await openStreams(2)) === 0);
  }, 30_000);
});

/** A SigV4-signed GET of MinIO's ListenBucketNotification on peer i's S3 port, read as JSON lines. */
async function listen(i: number, bucket: string, query: Record<string, string | string[]>): Promise<Reader<string>> {
  const u = new URL(cluster.peer(i).s3Url);
  const headers = { host: u.host, "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" };
  const signed = await signer().sign({ method: "GET", protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: `/${bucket}`, query, headers });
  const qs = Object.entries(query)
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${encodeURIComponent(x)}`))
    .join("&");
  const out = { ...(signed.headers as Record<string, string>) };
  delete out.host;
  const aborter = new AbortController();
  const res = await fetch(`${u.origin}/${bucket}?${qs}`, { headers: out, signal: aborter.signal });
  const reader = new Reader(res, aborter, (buffer) => {
    const lines = buffer.split("\n");
    return { pieces: lines.slice(0, -1), rest: lines[lines.length - 1] };
  });
  readers.push(reader);
  return reader;
}

describe("ListenBucketNotification (MinIO's form) on the S3 port", () => {
  test("a signed listen receives new writes and deletes as {Records} lines, keep-alive lines between; bad input is an S3 error", async () => {
    const BUCKET = "minio-listen";
    await mustCreateBucket(url(0), BUCKET);
    expect(statusAndCode(await putObject(url(0), BUCKET, "before.txt", "x"))).toBe("200");
    await Bun.sleep(1200);
    const s = await listen(1, BUCKET, { events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectAccessed:*"], prefix: "", suffix: ".txt", ping: "1" });
    expect(s.response.status).toBe(200);
    expect(s.response.headers.get("content-type")).toStartWith("text/event-stream");
    expect(statusAndCode(await putObject(url(2), BUCKET, "a.txt", "hello"))).toBe("200");
    expect(statusAndCode(await putObject(url(2), BUCKET, "b.bin", "x"))).toBe("200");
    expect(statusAndCode(await deleteObject(url(2), BUCKET, "a.txt"))).toBe("204");
    const records: S3Record[] = [];
    let keepAlives = 0;
    while (records.length < 2) {
      const doc = JSON.parse(await s.next()) as { Records: S3Record[] | null };
      if (doc.Records === null) keepAlives++;
      else {
        expect(doc.Records.length).toBe(1);
        records.push(...doc.Records);
      }
    }
    expect(records.map((r) => `${r.eventName} ${r.s3.object.key}`)).toEqual(["s3:ObjectCreated:Put a.txt", "s3:ObjectRemoved:Delete a.txt"]);
    expect(records[0].s3.object.size).toBe(5);
    // Idle, the listen says so every second: an empty {"Records":null} line.
    const idle = JSON.parse(await s.next(3000)) as { Records: unknown };
    expect(idle.Records).toBeNull();
    console.log(`listen: ${records.length} records, ${keepAlives + 1} keep-alive lines`);
    s.close();
    await waitFor("peer 1's listen to end", async () => (await openStreams(1)) === 0);

    // Unsigned, and with an unknown event: S3 error documents, no stream.
    const unsigned = await fetch(`${cluster.peer(1).s3Url}/${BUCKET}?events=s3:ObjectCreated:*`);
    expect(unsigned.status).toBe(403);
    const bad = await listen(1, BUCKET, { events: "s3:ObjectCreated:Nope" });
    expect(bad.response.status).toBe(400);
    await waitFor("the error document", () => bad.ended, 5000);
    expect(s3ErrorOf(bad.raw).code).toBe("InvalidArgument");
    const badPing = await listen(1, BUCKET, { events: "s3:ObjectCreated:*", ping: "0" });
    expect(badPing.response.status).toBe(400);
    badPing.close();
    expect(await openStreams(1)).toBe(0);
  }, 30_000);
});

describe("the peer stops", () => {
  test("a graceful stop ends the open streams cleanly instead of waiting out its grace", async () => {
    const BUCKET = "sse-stop";
    await mustCreateBucket(url(0), BUCKET);
    const s = await openSse(url(2), BUCKET);
    await s.next();
    const began = Date.now();
    await cluster.stop(2);
    const took = Date.now() - began;
    await waitFor("the stream to end", () => s.ended, 5000);
    console.log(`peer stopped in ${took} ms with a stream open`);
    expect(s.error).toBeUndefined();
    expect(cluster.peers[2].logs.filter((l) => l.includes("cut off"))).toEqual([]);
  }, 30_000);
});
