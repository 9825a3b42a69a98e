// Bounded p2p resources against an insider: a node that holds the mesh key (a buggy or
// compromised member) and speaks the RPC wire format directly. A declared body beyond the
// method's limit is refused before anything is buffered; stalled bodies are dropped after
// the stall timeout and their memory comes back; idle raw TCP connections cannot lock a
// real member out and are closed after the upgrade timeout; forged members gossiped by a
// third party never enter a member's view, and a member that stops answering goes dead
// whatever others say about it. The peers keep serving throughout.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair } from "@libp2p/crypto/keys";
import type { Connection, Libp2p, Stream } from "@libp2p/interface";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { tcp } from "@libp2p/tcp";
import { multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { encodeMessage, MessageReader } from "../../src/net/frames.ts";
import { HALF_OPEN_PER_IP } from "../../src/net/half-open.ts";
import { INBOUND_UPGRADE_TIMEOUT_MS } from "../../src/net/libp2p.ts";
import { parseMeshKey } from "../../src/net/mesh-key.ts";
import { noiseCrypto } from "../../src/net/noise-crypto.ts";
import { meshKeyProtector } from "../../src/net/protector.ts";
import { CONTROL_RPC_PROTOCOL, RPC_PROTOCOL } from "../../src/net/rpc.ts";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { clusterStatus as statusOf, mustCreateBucket, mustGet, mustPut, sameBytes } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const MiB = 1024 * 1024;
/** The injected stall timeout (production: 15 s). */
const STALL_MS = 1000;

/** `/cluster/status` with the RPC figures this file checks. */
const clusterStatus = async (url: string) => (await statusOf(url)) as unknown as { rpc: { inboundBodyBytes: number } };

let c: Cluster;
beforeAll(async () => {
  c = await startConverged(2, { config: { rpcLimits: { stallMs: STALL_MS } } });
  await mustCreateBucket(c.peer(0).httpUrl, "limits");
});
afterAll(() => teardownCluster(c));

/** A libp2p node holding the mesh key, outside the mesh's code. */
async function insider(): Promise<Libp2p> {
  return createLibp2p({
    addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
    transports: [tcp()],
    connectionProtector: meshKeyProtector(parseMeshKey(readFileSync(c.meshKeyFile, "utf8"), c.meshKeyFile)),
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
  });
}

/** The wire prefix of a request that declares `bodyBytes` (which may never come). */
function requestPrefix(header: unknown, bodyBytes: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, h.byteLength);
  out.set(h, 4);
  view.setUint32(4 + h.byteLength, bodyBytes);
  return out;
}

/** Resolves with the ms until `stream` closes (reset by the peer), or rejects after `timeoutMs`. */
function closedWithin(stream: Stream, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (stream.status !== "open") return resolve(0);
    const timer = setTimeout(() => reject(new Error(`stream still ${stream.status} after ${timeoutMs} ms`)), timeoutMs);
    stream.addEventListener(
      "close",
      () => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      },
      { once: true },
    );
  });
}

function rssMiB(): number {
  Bun.gc(true);
  return process.memoryUsage.rss() / MiB;
}

/** The peer still writes and reads through its HTTP API (chunks travel to the other peer over RPC). */
async function stillServes(key: string): Promise<void> {
  const body = seededBytes(2 * MiB + 5, key.length);
  await mustPut(c.peer(0).httpUrl, "limits", key, body);
  expect(sameBytes(await mustGet(c.peer(0).httpUrl, "limits", key), body)).toBe(true);
}

const target = () => multiaddr(c.peer(0).multiaddrs()[0]);

test("declared sizes beyond the limits are refused at once, before anything is buffered", async () => {
  const node = await insider();
  try {
    const conn: Connection = await node.dial(target());
    const before = rssMiB();
    const chunkId = "0".repeat(64);
    const attempts: Array<[string, Uint8Array[]]> = [
      ["a 1 GiB chunk body", [requestPrefix({ m: "chunk.put", p: { id: chunkId } }, 1024 * MiB), new Uint8Array(MiB)]],
      ["a 1 GiB header", [new Uint8Array([0x40, 0, 0, 0]), new Uint8Array(MiB)]],
      ["a body on a method that takes none", [requestPrefix({ m: "swim.ping", p: {} }, MiB), new Uint8Array(MiB)]],
      ["a chunk body over the largest chunk size", [requestPrefix({ m: "chunk.put", p: { id: chunkId } }, 65 * MiB)]],
    ];
    for (const [what, parts] of attempts) {
      const stream = await conn.newStream(RPC_PROTOCOL);
      for (const part of parts) stream.send(part);
      const ms = await closedWithin(stream, 2000).catch((err) => {
        throw new Error(`${what}: ${(err as Error).message}`);
      });
      console.log(`${what}: refused in ${Math.round(ms)} ms`);
    }
    const grown = rssMiB() - before;
    console.log(`rss growth after the refusals: ${grown.toFixed(1)} MiB`);
    expect(grown).toBeLessThan(64);
    expect((await clusterStatus(c.peer(0).httpUrl)).rpc.inboundBodyBytes).toBe(0);
    await stillServes("after-refusals");
  } finally {
    await node.stop();
  }
}, 30_000);

test("40 stalled 60 MiB bodies are dropped after the stall timeout and their memory comes back; the peer serves throughout", async () => {
  const node = await insider();
  const body = new Uint8Array(60 * MiB); // shared by every stream: the insider holds it once
  try {
    const conn: Connection = await node.dial(target());
    const start = rssMiB();
    let peak = start;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss() / MiB)), 50);
    const began = performance.now();
    const streams: Stream[] = [];
    for (let i = 0; i < 40; i++) streams.push(await conn.newStream(RPC_PROTOCOL));
    const closed = streams.map((s) => closedWithin(s, 30_000));
    for (const [i, s] of streams.entries()) {
      s.send(requestPrefix({ m: "chunk.put", p: { id: i.toString(16).padStart(64, "0") } }, body.byteLength));
      s.send(body.subarray(0, body.byteLength - 7)); // all but the last bytes, then nothing
    }
    await Bun.sleep(300);
    const held = (await clusterStatus(c.peer(0).httpUrl)).rpc.inboundBodyBytes;
    console.log(`inbound body bytes held while stalled: ${(held / MiB).toFixed(0)} MiB`);
    expect(held).toBeLessThanOrEqual(256 * MiB);
    // Membership, writes and reads go on while the budget is spent.
    await stillServes("during-stall");
    expect(await c.allSee([1], [0], "alive")).toBe(true);
    const times = await Promise.all(closed);
    clearInterval(sampler);
    const allGone = performance.now() - began;
    await Bun.sleep(200);
    const end = rssMiB();
    console.log(
      `40 x 60 MiB stalled streams: rss start ${start.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, after ${end.toFixed(0)} MiB; ` +
        `first dropped after ${Math.round(Math.min(...times))} ms, all dropped after ${Math.round(allGone)} ms`,
    );
    expect(Math.min(...times)).toBeGreaterThanOrEqual(STALL_MS - 100);
    expect(end - start).toBeLessThan(100);
    expect((await clusterStatus(c.peer(0).httpUrl)).rpc.inboundBodyBytes).toBe(0);
    await stillServes("after-stall");
  } finally {
    await node.stop();
  }
}, 40_000);

test("64 idle raw TCP connections do not lock a real member out, and are closed by the upgrade timeout", async () => {
  const port = Number(/\/tcp\/(\d+)/.exec(c.peer(0).multiaddrs()[0])![1]);
  const sockets: Array<{ opened: number; closedAfter?: number }> = [];
  const open: net.Socket[] = [];
  // Paced under libp2p's 50 inbound connections per second per address.
  for (let i = 0; i < 64; i++) {
    const s = net.connect(port, "127.0.0.1");
    const rec: { opened: number; closedAfter?: number } = { opened: performance.now() };
    s.on("error", () => {});
    s.on("close", () => (rec.closedAfter = performance.now() - rec.opened));
    sockets.push(rec);
    open.push(s);
    await Bun.sleep(25);
  }
  try {
    await Bun.sleep(1000); // let the per-address rate window pass
    const silent = sockets.filter((s) => s.closedAfter === undefined).length;
    console.log(`idle sockets still open before the join: ${silent}`);
    expect(silent).toBeGreaterThan(0);
    expect(silent).toBeLessThanOrEqual(HALF_OPEN_PER_IP);
    const joinStarted = performance.now();
    await c.add(0);
    // Within the upgrade timeout: the join does not wait for the idle sockets to time out.
    await c.waitFor("the new member seen alive by all", () => c.allSee([0, 1, 2], [0, 1, 2], "alive"), INBOUND_UPGRADE_TIMEOUT_MS - 500);
    console.log(`a real member joined in ${Math.round(performance.now() - joinStarted)} ms with ${silent} idle sockets held`);
    await c.waitFor("every idle socket closed", () => sockets.every((s) => s.closedAfter !== undefined), INBOUND_UPGRADE_TIMEOUT_MS + 5000);
    const longest = Math.max(...sockets.map((s) => s.closedAfter!));
    console.log(`longest-lived idle socket: ${Math.round(longest)} ms`);
    expect(longest).toBeLessThan(INBOUND_UPGRADE_TIMEOUT_MS + 3000);
  } finally {
    for (const s of open) s.destroy();
  }
}, 40_000);

test("forged members gossiped by an insider never enter a view, and a silent member goes dead whatever others gossip", async () => {
  const silent = await insider();
  const gossiper = await insider();
  const record = (node: Libp2p, inc: number) => ({ id: node.peerId.toString(), addrs: node.getMultiaddrs().map(String), state: "alive", inc });
  const forged = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => ({
      id: peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString(),
      addrs: ["/ip4/127.0.0.1/tcp/1"],
      state: ["alive", "suspect", "dead"][i % 3],
      inc: 2 ** 40,
    })),
  );
  /** One swim.ping from `node` to peer `i` on the control lane, with `from` and gossip as given. */
  async function ping(node: Libp2p, i: number, from: unknown, gossip: unknown[]): Promise<void> {
    const stream = await node.dialProtocol(multiaddr(c.peer(i).multiaddrs()[0]), CONTROL_RPC_PROTOCOL);
    for (const part of encodeMessage({ m: "swim.ping", p: { from, gossip } })) stream.send(part);
    const reply = await new MessageReader(stream).next<{ ok: boolean }>();
    expect(reply?.header.ok).toBe(true);
    await stream.close();
  }
  try {
    // The silent insider introduces itself once (direct word: it joins), then never answers.
    await ping(silent, 0, record(silent, 1), []);
    // The gossiper speaks for itself, claims to be a forged member too, gossips the forged
    // members and keeps raising the silent one's incarnation.
    const silentId = silent.peerId.toString();
    const stop = AbortSignal.timeout(8000);
    let inc = 2;
    let sawSilentDead = -1;
    const started = performance.now();
    // Gossip on for a second after the death, to show it does not bring the member back.
    while (!stop.aborted && (sawSilentDead < 0 || performance.now() - started < sawSilentDead + 1000)) {
      for (const i of [0, 1]) {
        await ping(gossiper, i, forged[0], [...forged, { ...record(silent, inc++) }]).catch(() => {});
        await ping(gossiper, i, record(gossiper, 1), [...forged, { ...record(silent, inc++) }]).catch(() => {});
      }
      if (sawSilentDead < 0 && (await c.viewOf(0)).get(silentId) === "dead") sawSilentDead = performance.now() - started;
      await Bun.sleep(100);
    }
    console.log(`silent insider declared dead after ${Math.round(sawSilentDead)} ms despite ${inc - 2} gossiped refutations`);
    expect(sawSilentDead).toBeGreaterThan(0);
    for (const i of [0, 1]) {
      const view = await c.viewOf(i);
      for (const f of forged) expect(view.has(f.id)).toBe(false);
      expect(view.get(silentId)).not.toBe("alive");
      const roster = readFileSync(path.join(c.peers[i].dataDir, "members.json"), "utf8");
      for (const f of forged) expect(roster).not.toContain(f.id);
    }
  } finally {
    await Promise.all([silent.stop(), gossiper.stop()]);
  }
}, 30_000);
