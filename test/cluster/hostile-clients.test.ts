// Hostile clients against real peers over real HTTP: uploads that stall mid-body are timed
// out and their memory comes back; floods from one address or one key are rate limited
// while others get through; failed authentications are limited harder; the AWS SDK, backing
// off on 503 SlowDown, completes every request against a low --max-inflight; every refusal
// is counted in /cluster/status.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Cluster, teardownCluster, withCluster } from "../harness/cluster.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { mustCreateBucket, rawRequest, type RawOutcome } from "../harness/http.ts";
import { spawnPeer, type PeerProcess } from "../harness/process.ts";
import { waitFor } from "../harness/wait.ts";
import { bearer, bodyBytes, createKey, s3Client, s3Path, signer, TEST_ADMIN, type Creds } from "../harness/s3.ts";

const MiB = 1 << 20;
const GiB = 1 << 30;

interface LimitsStatus {
  rateLimited: number;
  inflightRejected: number;
  bodyTimeouts: number;
  authFailuresLimited: number;
  uploadMemoryRejected: number;
  inflight: number;
  uploadMemoryBytes: number;
}

async function statusOf(httpUrl: string): Promise<{ limits: LimitsStatus; process: { rssBytes: number } }> {
  const res = await fetch(`${httpUrl}/cluster/status`);
  if (res.status !== 200) throw new Error(`GET /cluster/status: ${res.status}`);
  return (await res.json()) as { limits: LimitsStatus; process: { rssBytes: number } };
}

/** One request sent from `localAddress` (another 127.0.0.x: another client address to the peer). */
function fromAddress(localAddress: string, base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), localAddress, method, path, headers: { ...headers, ...(body ? { "content-length": String(body.byteLength) } : {}) }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** The request line and headers of an S3 PutObject declaring `length` bytes, signed with UNSIGNED-PAYLOAD. */
async function signedPutHead(s3Url: string, bucket: string, key: string, length: number, creds: Creds = TEST_ADMIN): Promise<string> {
  const u = new URL(s3Url);
  const p = s3Path(bucket, key);
  const signed = await signer(creds).sign(
    { method: "PUT", protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path: p, query: {}, headers: { host: u.host, "content-length": String(length), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } },
    { signingDate: new Date() },
  );
  const lines = Object.entries(signed.headers as Record<string, string>).map(([k, v]) => `${k}: ${v}`);
  return `PUT ${p} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

function nativePutHead(httpUrl: string, bucket: string, key: string, length: number): string {
  return `PUT /buckets/${bucket}/objects/${key} HTTP/1.1\r\nHost: ${new URL(httpUrl).host}\r\nAuthorization: ${ADMIN_BEARER}\r\nContent-Length: ${length}\r\n\r\n`;
}

const errorCode = (text: string) => /"code":"([^"]+)"/.exec(text)?.[1] ?? /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? "?";

/** Open `n` connections that send a request's headers one byte every `everyMs`; resolves to what each saw and when it ended. */
function slowloris(base: string, n: number, everyMs: number, giveUpMs: number): Promise<Array<{ text: string; closedAfterMs: number | null }>> {
  const { hostname, port } = new URL(base);
  const head = `GET /buckets HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: ${ADMIN_BEARER}\r\nX-Padding: ${"a".repeat(10_000)}\r\n\r\n`;
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<{ text: string; closedAfterMs: number | null }>((resolve) => {
          const t0 = Date.now();
          let text = "";
          let sent = 0;
          const sock = net.connect({ host: hostname, port: Number(port) });
          const drip = setInterval(() => {
            if (sent < head.length && sock.writable) sock.write(head[sent++]);
          }, everyMs);
          const done = (closedAfterMs: number | null) => {
            clearInterval(drip);
            clearTimeout(giveUp);
            sock.destroy();
            resolve({ text, closedAfterMs });
          };
          const giveUp = setTimeout(() => done(null), giveUpMs);
          sock.on("data", (d: Buffer) => (text += d.toString("latin1")));
          sock.on("close", () => done(Date.now() - t0));
          sock.on("error", () => {});
        }),
    ),
  );
}

describe("stalled uploads and slowloris", () => {
  const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-hostile-"));
  let peer: PeerProcess | undefined;
  // A real process, so that its RSS is the peer's alone. A short body timeout is injected with the flag.
  beforeAll(async () => {
    peer = await spawnPeer(["--data", path.join(root, "p"), "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0", "--rf", "1", "--body-timeout", "1"]);
    await mustCreateBucket(peer.http, "stall");
  });
  afterAll(() => {
    peer?.proc.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  test(
    "200 uploads that declare 1 GiB and go quiet after 4 MiB are timed out, discarded and their memory returns; others are served meanwhile",
    async () => {
      const { http: httpUrl, s3: s3Url } = peer!;
      // Warm up the upload path once, so the baseline includes what any first upload allocates.
      expect((await fetch(`${httpUrl}/buckets/stall/objects/warm`, { method: "PUT", headers: { authorization: ADMIN_BEARER }, body: new Uint8Array(6 * MiB) })).status).toBe(200);
      const baseline = (await statusOf(httpUrl)).process.rssBytes;

      const sent = new Uint8Array(4 * MiB).fill(7);
      const N = 200;
      const started = Date.now();
      const outcomes: Array<Promise<{ api: "native" | "s3"; out: RawOutcome; ms: number }>> = [];
      for (let i = 0; i < N; i++) {
        const api = i % 2 === 0 ? "native" : "s3";
        const head = api === "native" ? nativePutHead(httpUrl, "stall", `n${i}`, GiB) : await signedPutHead(s3Url, "stall", `s${i}`, GiB);
        outcomes.push(rawRequest(api === "native" ? httpUrl : s3Url, head, sent, "wait", 60_000).then((out) => ({ api, out, ms: Date.now() - started })));
      }

      // Meanwhile the peer serves others, and its RSS is sampled.
      let peak = baseline;
      let peakBudget = 0;
      let served = 0;
      let slowest = 0;
      let settled = false;
      const all = Promise.all(outcomes).finally(() => (settled = true));
      while (!settled) {
        const t0 = Date.now();
        const put = await fetch(`${httpUrl}/buckets/stall/objects/ok-${served}`, { method: "PUT", headers: { authorization: ADMIN_BEARER }, body: `fine ${served}` });
        expect(put.status).toBe(200);
        const get = await fetch(`${httpUrl}/buckets/stall/objects/ok-${served}`, { headers: { authorization: ADMIN_BEARER } });
        expect(await get.text()).toBe(`fine ${served}`);
        slowest = Math.max(slowest, Date.now() - t0);
        served++;
        const sample = await statusOf(httpUrl);
        peak = Math.max(peak, sample.process.rssBytes);
        peakBudget = Math.max(peakBudget, sample.limits.uploadMemoryBytes);
        await Bun.sleep(100);
      }
      const results = await all;
      const elapsed = Date.now() - started;
      const times = results.map((r) => r.ms).sort((a, b) => a - b);
      console.log(`answer times ms: min ${times[0]} median ${times[N >> 1]} max ${times[N - 1]}`);

      const tally = new Map<string, number>();
      for (const { api, out } of results) {
        const what = `${api} ${out.status ?? "none"} ${out.status ? errorCode(out.text) : ""}`.trim();
        tally.set(what, (tally.get(what) ?? 0) + 1);
        // Each stalled connection gets an answer and is then closed: it cannot carry another request.
        expect(out.closed).toBe(true);
      }
      // Every one answered RequestTimeout (S3: 400 XML; native: 408 JSON), or SlowDown if it waited too long for upload memory.
      const allowed = new Set(["native 408 RequestTimeout", "s3 400 RequestTimeout", "native 429 SlowDown", "s3 503 SlowDown"]);
      for (const what of tally.keys()) expect(allowed.has(what)).toBe(true);
      const timedOut = (tally.get("native 408 RequestTimeout") ?? 0) + (tally.get("s3 400 RequestTimeout") ?? 0);
      expect(timedOut).toBeGreaterThan(N / 2);

      // Nothing of them was stored as an object.
      for (const key of ["n0", "n100", "s1", "s199"]) {
        expect((await fetch(`${httpUrl}/buckets/stall/objects/${key}`, { method: "HEAD", headers: { authorization: ADMIN_BEARER } })).status).toBe(404);
      }
      const status = await statusOf(httpUrl);
      expect(status.limits.bodyTimeouts).toBe(timedOut);
      expect(status.limits.uploadMemoryBytes).toBe(0);
      expect(status.limits.inflight).toBeLessThanOrEqual(1);

      // Memory returns once they are gone (allocators give pages back lazily: wait for it).
      let after = status.process.rssBytes;
      const returnStarted = Date.now();
      const deadline = Date.now() + 15_000;
      while (after > baseline + 150 * MiB && Date.now() < deadline) {
        await Bun.sleep(250);
        after = (await statusOf(httpUrl)).process.rssBytes;
      }
      const mb = (b: number) => Math.round(b / MiB);
      console.log(
        `stalled uploads: ${N} (1 GiB declared, 4 MiB sent) answered in ${elapsed} ms: ${JSON.stringify(Object.fromEntries(tally))}; ` +
          `RSS baseline ${mb(baseline)} MiB, peak ${mb(peak)} MiB, after ${mb(after)} MiB (${Date.now() - returnStarted} ms after the last answer); upload buffers reserved at most ${mb(peakBudget)} MiB (budget 512); ` +
          `${served} other PUT+GET served meanwhile, slowest ${slowest} ms`,
      );
      // Upload buffers stay within the budget; RSS above it is garbage the collector has not reached yet.
      expect(peakBudget).toBeLessThanOrEqual(512 * MiB);
      expect(peak - baseline).toBeLessThan(1024 * MiB);
      expect(after - baseline).toBeLessThan(150 * MiB);
      expect(served).toBeGreaterThan(0);
    },
    60_000,
  );

  test("clients dribbling their headers a byte at a time get 408 and are closed after the timeout; others are served meanwhile", async () => {
    const { http: httpUrl, s3: s3Url } = peer!;
    const started = Date.now();
    const loris = Promise.all([slowloris(httpUrl, 50, 100, 10_000), slowloris(s3Url, 50, 100, 10_000)]).then((r) => r.flat());
    await Bun.sleep(300);
    expect((await fetch(`${httpUrl}/buckets`, { headers: { authorization: ADMIN_BEARER } })).status).toBe(200);
    const results = await loris;
    for (const r of results) {
      // --body-timeout 1 also bounds the headers; well before the 10 s the client would go on.
      expect(r.closedAfterMs).not.toBeNull();
      expect(r.closedAfterMs!).toBeLessThan(6000);
      expect(r.text).toStartWith("HTTP/1.1 408");
    }
    console.log(`slowloris: 100 connections closed with 408 after ${Math.min(...results.map((r) => r.closedAfterMs!))}-${Math.max(...results.map((r) => r.closedAfterMs!))} ms (timeout 1 s); whole test ${Date.now() - started} ms`);
  }, 20_000);

  test("a download whose client stops reading is dropped after the timeout, freeing its slot", async () => {
    const { http: httpUrl } = peer!;
    expect((await fetch(`${httpUrl}/buckets/stall/objects/big`, { method: "PUT", headers: { authorization: ADMIN_BEARER }, body: new Uint8Array(32 * MiB) })).status).toBe(200);
    const { hostname, port } = new URL(httpUrl);
    const t0 = Date.now();
    let received = 0;
    const sock = net.connect({ host: hostname, port: Number(port) }, () => {
      sock.write(`GET /buckets/stall/objects/big HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: ${ADMIN_BEARER}\r\n\r\n`);
      sock.pause(); // never read: the peer's writes back up
    });
    sock.on("error", () => {});
    const closed = new Promise<void>((resolve) => sock.on("close", () => resolve()));
    await Bun.sleep(300);
    // Only the status request itself is in flight once the peer has given up on the reader.
    const after = await waitFor("the unread download to be dropped", async () => (await statusOf(httpUrl)).limits.inflight === 1, 10_000, 200).then(() => Date.now() - t0);
    // The peer closed the connection: read what was sent, and the end comes.
    sock.on("data", (d: Buffer) => (received += d.byteLength));
    sock.resume();
    await Promise.race([closed, Bun.sleep(5000).then(() => sock.destroy(new Error("the peer kept the connection open")))]);
    expect(sock.errored).toBeFalsy();
    expect(received).toBeLessThan(32 * MiB);
    console.log(`unread download dropped after ${after} ms (timeout 1 s), ${Math.round(received / MiB)} MiB of 32 had been sent`);
  }, 20_000);
});

describe("rate limits", () => {
  // One peer with low limits, applied to loopback clients too (the tests' clients are all
  // loopback; other 127.0.0.x source addresses stand for other clients).
  let cluster: Cluster | undefined;
  beforeAll(async () => {
    cluster = await new Cluster({
      rf: 1,
      config: {
        limits: {
          perKey: { perSecond: 5, burst: 10 },
          perIp: { perSecond: 10, burst: 40 },
          authFailures: { perSecond: 1, burst: 5 },
          limitLoopback: true,
        },
      },
    }).start(1);
  });
  afterAll(() => teardownCluster(cluster));

  test("a flood with one key is limited (429 native, 503 SlowDown S3, with Retry-After) while another key gets through", async () => {
    const { httpUrl, s3Url } = cluster!.peer(0);
    await mustCreateBucket(httpUrl, "flood");
    const flooder = await createKey(httpUrl, { buckets: { flood: "write" } });
    const other = await createKey(httpUrl, { buckets: { flood: "write" } });
    const before = (await statusOf(httpUrl)).limits.rateLimited;
    // Each request of the flood from another address, so that only the per-key limit is in play.
    const list = (addr: string, token: string) => fromAddress(addr, httpUrl, "GET", "/buckets/flood/objects", { authorization: bearer(token) });
    const flood = await Promise.all(Array.from({ length: 30 }, (_, i) => list(`127.0.1.${i + 1}`, flooder.token)));
    const refused = flood.filter((r) => r.status === 429);
    // A burst of 10, plus 5 a second while the flood lasts.
    expect(flood.filter((r) => r.status === 200).length).toBeLessThanOrEqual(15);
    expect(refused.length).toBeGreaterThanOrEqual(15);
    expect(flood.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(JSON.parse(refused[0].text).error.code).toBe("SlowDown");
    expect(Number(refused[0].headers["retry-after"])).toBeGreaterThanOrEqual(1);

    // The other key is not affected.
    for (let i = 0; i < 5; i++) expect((await list("127.0.0.12", other.token)).status).toBe(200);

    // The same key over S3: 503 SlowDown in S3's XML, with Retry-After.
    const sdk = s3Client(s3Url, flooder, { maxAttempts: 1 });
    const failures = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => sdk.send(new PutObjectCommand({ Bucket: "flood", Key: `k${i}`, Body: "x" }))));
    const slowDowns = failures.filter((f) => f.status === "rejected" && (f.reason as { name?: string }).name === "SlowDown");
    expect(slowDowns.length).toBeGreaterThan(0);
    const meta = (slowDowns[0] as PromiseRejectedResult).reason as { $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string> } };
    expect(meta.$metadata?.httpStatusCode).toBe(503);
    expect(Number(meta.$response?.headers?.["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await statusOf(httpUrl)).limits.rateLimited - before).toBeGreaterThanOrEqual(refused.length + slowDowns.length);
  }, 30_000);

  test("a flood from one address is limited while another address gets through; /health is never limited", async () => {
    const { httpUrl } = cluster!.peer(0);
    const before = (await statusOf(httpUrl)).limits.rateLimited;
    const flood = await Promise.all(Array.from({ length: 100 }, () => fromAddress("127.0.0.21", httpUrl, "GET", "/cluster/peers")));
    const refused = flood.filter((r) => r.status === 429);
    // A burst of 40, plus 10 a second while the flood lasts.
    expect(refused.length).toBeGreaterThanOrEqual(20);
    expect(flood.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(JSON.parse(refused[0].text).error.code).toBe("SlowDown");
    expect(Number(refused[0].headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await fromAddress("127.0.0.22", httpUrl, "GET", "/cluster/peers")).status).toBe(200);
    expect((await fromAddress("127.0.0.21", httpUrl, "GET", "/health")).status).toBe(200);
    expect((await statusOf(httpUrl)).limits.rateLimited - before).toBeGreaterThanOrEqual(refused.length);
  }, 30_000);

  test("failed authentications from one address are limited harder, on both APIs; a good client elsewhere is not", async () => {
    const { httpUrl, s3Url } = cluster!.peer(0);
    await mustCreateBucket(httpUrl, "guess");
    const wrong = "Bearer mst_MKNOSUCHKEY0000000000_AAAA";
    const guesses = [];
    for (let i = 0; i < 10; i++) guesses.push(await fromAddress("127.0.0.31", httpUrl, "GET", "/buckets", { authorization: wrong }));
    const statuses = guesses.map((g) => g.status);
    // Five failures (the burst), then the address is refused before its token is even looked at.
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    expect(Number(guesses[9].headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // The S3 port of the same peer refuses that address too, in S3's format.
    const s3 = await fromAddress("127.0.0.31", s3Url, "GET", "/guess");
    expect(s3.status).toBe(503);
    expect(errorCode(s3.text)).toBe("SlowDown");
    // Good clients at other addresses are served.
    expect((await fromAddress("127.0.0.32", httpUrl, "GET", "/buckets", { authorization: ADMIN_BEARER })).status).toBe(200);
    expect((await statusOf(httpUrl)).limits.authFailuresLimited).toBeGreaterThanOrEqual(6);
  }, 30_000);
});

describe("requests in flight", () => {
  // The SDK's standard retry strategy backs off on SlowDown for at least Retry-After; its
  // default of 3 attempts is too few for 50 requests at once against 8 slots (as with S3
  // itself, whose guidance under SlowDown is more retries), so the client allows 8.
  test("the AWS SDK completes 50 concurrent uploads against --max-inflight 8, backing off on 503 SlowDown", async () => {
    await withCluster(1, { rf: 1, config: { limits: { maxInflight: 8 } } }, async (c: Cluster) => {
      const { httpUrl, s3Url } = c.peer(0);
      await mustCreateBucket(httpUrl, "busy");
      const sdk = s3Client(s3Url, TEST_ADMIN, { maxAttempts: 8 });
      const body = (i: number) => new Uint8Array(64 * 1024).fill(i);
      const started = Date.now();
      const puts = await Promise.all(Array.from({ length: 50 }, (_, i) => sdk.send(new PutObjectCommand({ Bucket: "busy", Key: `o${i}`, Body: body(i) }))));
      const attempts = puts.map((r) => r.$metadata.attempts ?? 1);
      const limits = (await statusOf(httpUrl)).limits;
      console.log(`--max-inflight 8: 50 concurrent SDK uploads completed in ${Date.now() - started} ms; ${limits.inflightRejected} refusals retried; attempts at most ${Math.max(...attempts)}`);
      // Read back one at a time (a slot is always free then).
      for (let i = 0; i < 50; i++) {
        const got = await bodyBytes((await sdk.send(new GetObjectCommand({ Bucket: "busy", Key: `o${i}` }))).Body);
        expect(Buffer.compare(got, body(i))).toBe(0);
      }
      expect(limits.inflightRejected).toBeGreaterThan(0);

      // With every slot held by a stalled upload, /health still answers and other routes are
      // refused: the native API answers 429 SlowDown with Retry-After. (A flood of GETs no
      // longer shows it: with their manifests cached, 40 GETs finish faster than they arrive.)
      const head = `PUT /buckets/busy/objects/stall HTTP/1.1\r\nHost: ${new URL(httpUrl).host}\r\nAuthorization: ${ADMIN_BEARER}\r\nContent-Length: 1000000\r\n\r\n`;
      const holders = Array.from({ length: 8 }, () => rawRequest(httpUrl, head, new Uint8Array(10), "wait", 1000));
      // Read in-process: over HTTP the status request would need a slot itself.
      await c.waitFor("8 requests in flight", () => (c.peer(0).status() as { limits: LimitsStatus }).limits.inflight >= 8, 5000);
      expect((await fetch(`${httpUrl}/health`)).status).toBe(200);
      expect((await fetch(`${httpUrl}/buckets`, { headers: { authorization: ADMIN_BEARER } })).status).toBe(429);
      const refused = await fetch(`${httpUrl}/buckets/busy/objects/o1`, { headers: { authorization: ADMIN_BEARER } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get("retry-after")).toMatch(/^[1-9]\d*$/);
      expect(errorCode(await refused.text())).toBe("SlowDown");
      await Promise.all(holders);
    });
  }, 60_000);
});
