// Memory per request is bounded whatever the object's size: a 1 GiB upload and download
// through one peer of a 3-process mesh must raise that peer's RSS by less than 200 MB.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { removeInBackground } from "../harness/cleanup.ts";
import { ADMIN_BEARER } from "../harness/credentials.ts";
import { spawnPeer, type PeerProcess } from "../harness/process.ts";

const GiB = 1024 ** 3;
const root = mkdtempSync(path.join(os.tmpdir(), "meshstore-mem-"));
const procs: PeerProcess[] = [];
afterAll(() => {
  for (const p of procs) p.proc.kill("SIGKILL");
  removeInBackground(root); // GiBs of chunk files: not with the event loop blocked (cleanup.ts)
});

async function rssOf(p: PeerProcess): Promise<number> {
  const s = (await (await fetch(`${p.http}/cluster/status`)).json()) as { process: { rssBytes: number } };
  return s.process.rssBytes;
}

/** A stream of `total` pseudo-random bytes made 1 MiB at a time, with a running checksum. */
function generated(total: number) {
  const block = new Uint8Array(1024 * 1024);
  crypto.getRandomValues(block.subarray(0, 65536));
  for (let i = 65536; i < block.length; i += 65536) block.copyWithin(i, 0, 65536);
  const hasher = new Bun.CryptoHasher("sha256");
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) return c.close();
      const n = Math.min(block.length, total - sent);
      const piece = block.slice(0, n);
      piece[0] = sent / block.length; // vary each block so chunks are not all identical
      hasher.update(piece);
      sent += n;
      c.enqueue(piece);
    },
  });
  return { stream, digest: () => hasher.digest("hex") };
}

test("a 1 GiB upload and download through one peer raise its RSS by less than 200 MB", async () => {
  const args = (name: string) => ["--data", path.join(root, name), "--p2p", "/ip4/127.0.0.1/tcp/0", "--http", "127.0.0.1:0", "--s3", "127.0.0.1:0"];
  const a = await spawnPeer(args("a"));
  procs.push(a);
  // Peer a started a new mesh and created its key; the others join with it.
  const join = ["--bootstrap", a.p2p[0], "--mesh-key", path.join(root, "a", "mesh.key")];
  // Both join at once (each start is a few seconds of `bun run node` on a loaded machine).
  const joined = await Promise.allSettled([spawnPeer([...args("b"), ...join]), spawnPeer([...args("c"), ...join])]);
  for (const r of joined) if (r.status === "fulfilled") procs.push(r.value);
  for (const r of joined) if (r.status === "rejected") throw r.reason;
  for (let i = 0; i < 100; i++) {
    const s = (await (await fetch(`${a.http}/cluster/status`)).json()) as { peers: { alive: number } };
    if (s.peers.alive === 3) break;
    await Bun.sleep(100);
  }
  expect((await fetch(`${a.http}/buckets/big`, { method: "PUT", headers: { authorization: ADMIN_BEARER } })).status).toBe(200);

  const baseline = await rssOf(a);
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await rssOf(a).catch(() => 0);
      if (process.env.RSS_TRACE) console.log("rss", Math.round(r / 1e6));
      peak = Math.max(peak, r);
      await Bun.sleep(100);
    }
  })();

  const body = generated(GiB);
  const started = performance.now();
  const put = await fetch(`${a.http}/buckets/big/objects/one-gib`, { method: "PUT", body: body.stream, headers: { "content-length": String(GiB), authorization: ADMIN_BEARER } });
  expect(put.status).toBe(200);
  const upSecs = (performance.now() - started) / 1000;

  if (process.env.RSS_TRACE) console.log("--- download");
  const t1 = performance.now();
  const res = await fetch(`${a.http}/buckets/big/objects/one-gib`, { headers: { authorization: ADMIN_BEARER } });
  const hasher = new Bun.CryptoHasher("sha256");
  let got = 0;
  for await (const piece of res.body!) {
    hasher.update(piece);
    got += piece.byteLength;
  }
  const downSecs = (performance.now() - t1) / 1000;
  sampling = false;
  await sampler;

  const grewMB = (peak - baseline) / 1e6;
  console.log(`1 GiB: PUT ${(GiB / 1e6 / upSecs).toFixed(0)} MB/s, GET ${(GiB / 1e6 / downSecs).toFixed(0)} MB/s; RSS ${(baseline / 1e6).toFixed(0)} MB -> peak ${(peak / 1e6).toFixed(0)} MB (+${grewMB.toFixed(0)} MB)`);
  expect(got).toBe(GiB);
  expect(hasher.digest("hex")).toBe(body.digest());
  expect(grewMB).toBeLessThan(200);
}, 240_000);
