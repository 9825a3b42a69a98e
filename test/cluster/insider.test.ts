// An insider: a libp2p node that holds the mesh key, so it connects and calls RPC as a
// member would, but is buggy or hostile. Against a 3-peer mesh it sends malformed params
// to every registered RPC method, forged deaths with absurd incarnations, index rows
// stamped a year (and 260 years) ahead and a planted admin key. The members answer with
// error replies and stay healthy, keep every member alive, store nothing from the future
// and spread none of it by anti-entropy, and a revocation beats any key row.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { Type } from "@sinclair/typebox";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import path from "node:path";
import { nativeToken, type AccessKey } from "../../src/auth/access-keys.ts";
import type { PeerView } from "../../src/api/status.ts";
import { RemoteError } from "../../src/errors.ts";
import { MAX_INCARNATION_AHEAD_MS } from "../../src/membership/member-table.ts";
import { deletesAreFinal } from "../../src/metadata/keys.ts";
import type { IndexEntry } from "../../src/metadata/types.ts";
import { encodeMessage, MessageReader, sendAll } from "../../src/net/frames.ts";
import { startLibp2p, type MeshLibp2p } from "../../src/net/libp2p.ts";
import { createLinkFilter } from "../../src/net/link-filter.ts";
import { loadMeshKey } from "../../src/net/mesh-key.ts";
import { createRpc, defineMethod, RPC_PROTOCOL, type Rpc } from "../../src/net/rpc.ts";
import { openIndexStore } from "../../src/store/index-store.ts";
import { encodeTimestamp, MAX_WALL } from "../../src/util/hlc.ts";
import { createLogger } from "../../src/util/log.ts";
import { startConverged, teardownCluster, type Cluster } from "../harness/cluster.ts";
import { listBuckets, mustCreateBucket, mustGet, mustPut, request, sameBytes } from "../harness/http.ts";
import { suiteLeaks } from "../harness/leak-check.ts";
import { seededBytes } from "../harness/random.ts";
import { listKeys, revokeKey } from "../harness/s3.ts";

const YEAR_MS = 365 * 24 * 3600_000;
const CHUNK_ID = "ab".repeat(32);

let c: Cluster;
let node: MeshLibp2p;
let rpc: Rpc;
const stopInsider = new AbortController();

beforeAll(async () => {
  c = await startConverged(3);
  const meshKey = await loadMeshKey(c.meshKeyFile);
  node = await startLibp2p({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], meshKey: meshKey.psk, filter: createLinkFilter() });
  await learnAddrs();
  rpc = createRpc(node, createLinkFilter(), createLogger("insider", () => {}, "error"), stopInsider.signal);
});
afterAll(async () => {
  stopInsider.abort();
  await node?.stop();
  await teardownCluster(c);
});

/** Tell the insider where every running member listens. */
async function learnAddrs(): Promise<void> {
  for (const i of c.running()) await node.peerStore.merge(peerIdFromString(c.peers[i].id), { multiaddrs: c.peer(i).multiaddrs().map((a) => multiaddr(a)) });
}

const id = (i: number) => c.peers[i].id;

/** The insider's own definition of a method: it sends whatever params it likes and trusts the reply as `R`. */
const insiderMethod = <R = unknown>(name: string) => defineMethod(name, { params: Type.Unknown(), result: Type.Unsafe<R>(Type.Unknown()) });

/** "ok", or the error reply as "Code status". */
async function outcome(i: number, method: string, params: unknown, body?: Uint8Array): Promise<string> {
  try {
    await rpc.call(id(i), insiderMethod(method), params, { body, timeoutMs: 5000 });
    return "ok";
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err;
    return `${err.code} ${err.status}`;
  }
}

/** A row as peer i stores it (no quorum, no filtering: what is on its disk). */
async function rowOn(i: number, shard: string, row: string): Promise<IndexEntry | null> {
  const { result } = await rpc.call(id(i), insiderMethod<Array<{ ok: boolean; v?: { entry: IndexEntry | null } }>>("index.getBatch"), { items: [{ shard, row }] }, { timeoutMs: 5000 });
  if (!result[0]?.ok) throw new Error(`getBatch on peer ${i}: ${JSON.stringify(result)}`);
  return result[0].v?.entry ?? null;
}

/** An index stamp at `wallMs`, issued by the insider. */
const stamp = (wallMs: number) => encodeTimestamp({ wall: Math.floor(wallMs), logical: 0, node: node.peerId.toString() });

/** Peer i's view of member `m`: its state and incarnation. */
async function viewOf(i: number, m: string): Promise<{ state: string; inc: number } | undefined> {
  const body = await c.getJson<PeerView>(i, "/cluster/peers");
  if (body.self.id === m) return { state: "alive", inc: body.self.incarnation };
  const p = body.peers.find((x) => x.id === m);
  return p && { state: p.state, inc: p.incarnation };
}

/** The mesh still serves reads and writes through every peer. */
async function servesReadsAndWrites(bucket: string): Promise<void> {
  await mustCreateBucket(c.peer(0).httpUrl, bucket);
  const body = seededBytes(2 * 1024 * 1024 + 17, c.seed);
  await mustPut(c.peer(1).httpUrl, bucket, "after", body);
  for (const i of [0, 1, 2]) expect(sameBytes(await mustGet(c.peer(i).httpUrl, bucket, "after"), body)).toBe(true);
}

/** Native-API status with a key's bearer token. */
async function statusAs(i: number, key: { accessKeyId: string; secretAccessKey: string }, route = "/admin/keys"): Promise<number> {
  return (await request(c.peer(i).httpUrl, "GET", route, { headers: { authorization: `Bearer ${nativeToken(key.accessKeyId, key.secretAccessKey)}` } })).status;
}

/** A key an insider plants over RPC; its secret joins the suite's secret check like any other. */
function adminKey(accessKeyId: string): AccessKey {
  const key: AccessKey = { accessKeyId, secretAccessKey: `planted-secret-${accessKeyId}`, name: "planted", admin: true, buckets: {}, createdMs: Date.now() };
  suiteLeaks.registerKey(key, true);
  return key;
}

test("params of the wrong shape to every registered method get an error reply; the peers stay healthy", async () => {
  const methods = c.peer(0).testHooks.rpcMethods().sort();
  // Every peer serves the same methods, and the list is the real one (not empty).
  expect(methods.length).toBeGreaterThanOrEqual(15);
  for (const i of [1, 2]) expect(c.peer(i).testHooks.rpcMethods().sort()).toEqual(methods);

  // Shapes no method takes, including an object of every param name with the wrong type.
  const wrongShapes: unknown[] = [
    null,
    42,
    "text",
    [1, 2],
    {},
    { id: 7, ids: "x", items: {}, shard: [], shards: 5, buckets: "all", rows: "r", members: null, from: 1, target: {}, candidate: 3, name: 9, gossip: {}, prefix: 5, limit: "9", you: 1 },
  ];
  const refused: string[] = [];
  for (const method of methods) {
    for (const params of wrongShapes) {
      for (const i of [0, 1, 2]) refused.push(`${method} ${JSON.stringify(params)} -> ${await outcome(i, method, params)}`);
      // With a body too: refused before any handler, whatever the method.
      refused.push(`${method} ${JSON.stringify(params)} +body -> ${await outcome(0, method, params, new Uint8Array([1, 2, 3]))}`);
    }
  }
  expect(refused.filter((r) => !r.endsWith("-> InvalidParams 400"))).toEqual([]);
  expect(refused.length).toBe(methods.length * wrongShapes.length * 4);

  // Right at the top, wrong inside or over a limit.
  const other = id(1);
  const member = (inc: number, extra: Record<string, unknown> = {}) => ({ id: other, addrs: [], state: "dead", inc, ...extra });
  const inside: Array<[string, unknown, Uint8Array?]> = [
    ["chunk.get", { id: CHUNK_ID.toUpperCase() }],
    ["chunk.put", { id: "../../etc/passwd" }, new Uint8Array(4)],
    ["chunk.has", { ids: Array(5001).fill(CHUNK_ID) }],
    ["chunk.ownedBy", { candidate: "not a peer id!", ids: [] }],
    ["gc.referenced", { ids: [CHUNK_ID, 5] }],
    ["index.getBatch", { items: [{ shard: "../../x", row: "r" }] }],
    ["index.getBatch", { items: [{ shard: "b", row: "r".repeat(5000) }] }],
    ["index.getBatch", { items: Array(257).fill({ shard: "b", row: "r" }) }],
    ["index.scan", { shards: ["b"], prefix: "", limit: 1e9 }],
    ["index.digests", { shards: Array(5000).fill("o1") }],
    ["index.rows", { shard: "b", buckets: [64] }],
    ["index.applyBatch", { items: [{ shard: "b", row: "r", entry: { ts: "yesterday", value: null } }] }],
    ["index.applyMany", { shard: "b", rows: [["r", { ts: stamp(Date.now()), value: null, extra: "x".repeat(1000) }]] }],
    ["cache.forget", { cache: "keys", key: "x".repeat(100) }],
    ["cache.forget", { cache: "keys", key: "MKTESTADMIN000000001" }, new Uint8Array(1)],
    ["cache.forget", { cache: "buckets", key: "" }],
    ["cache.forget", { cache: "manifests", key: "b\0k" }],
    ["swim.pingReq", { target: other, timeoutMs: -1, gossip: [] }],
    ["swim.pingReq", { target: other, gossip: [member(1, { state: "gone" })] }],
    ["swim.pingReq", { target: other, gossip: [member(1.5)] }],
    ["swim.pingReq", { target: other, gossip: [member(1, { secret: "rides along" })] }],
    // A member speaks only for itself: the insider cannot ping or sync as peer 1.
    ["swim.ping", { from: { ...member(1), state: "alive" }, gossip: [] }],
    ["swim.sync", { members: [{ ...member(1), state: "alive" }] }],
  ];
  const insideOutcomes = await Promise.all(inside.map(async ([m, p, body]) => `${m} -> ${await outcome(2, m, p, body)}`));
  expect(insideOutcomes).toEqual(inside.map(([m]) => `${m} -> InvalidParams 400`));

  // Headers that are not calls at all, on a raw stream: an error reply each, the stream stays usable.
  const stream = await node.dialProtocol(peerIdFromString(id(0)), RPC_PROTOCOL);
  const reader = new MessageReader(stream);
  for (const header of [null, [1], "x", { m: 5 }, { m: "__proto__" }, { m: "constructor", p: {} }]) {
    await sendAll(stream, encodeMessage(header));
    const reply = await reader.next<{ ok: boolean; code?: string; status?: number }>();
    expect(`${JSON.stringify(header)} -> ${reply?.header.ok} ${reply?.header.code} ${reply?.header.status}`).toBe(`${JSON.stringify(header)} -> false UnknownMethod 400`);
  }
  await stream.close();

  // Made-up method names are refused and not counted (the counters stay bounded).
  for (let n = 0; n < 50; n++) expect(await outcome(0, `made.up.${n}`, {})).toBe("UnknownMethod 400");
  expect([...c.peer(0).testHooks.rpcCounters.received.keys()].every((m) => methods.includes(m))).toBe(true);

  // Healthy: every member alive in every view, reads and writes served everywhere.
  expect(await c.allSee([0, 1, 2], [0, 1, 2], "alive")).toBe(true);
  await servesReadsAndWrites("after-bad-params");
}, 60_000);

test("a forged death with an absurd incarnation is ignored; one at an acceptable incarnation is refuted at once", async () => {
  const victim = id(0);
  const before = (await viewOf(0, victim))!.inc;
  const dead = (inc: number) => ({ id: victim, addrs: [], state: "dead", inc });
  // Not integers JSON can carry exactly: refused by the schema.
  for (const inc of [2 ** 60, Number.MAX_SAFE_INTEGER + 2]) {
    for (const i of [0, 1, 2]) expect(await outcome(i, "swim.pingReq", { target: id((i + 1) % 3), timeoutMs: 100, gossip: [dead(inc)] })).toBe("InvalidParams 400");
  }
  // A safe integer, but more than a day ahead of the boot-time scheme: taken in, and dropped by the member table.
  const tooFar = Date.now() + 2 * MAX_INCARNATION_AHEAD_MS;
  for (const i of [0, 1, 2]) expect(await outcome(i, "swim.pingReq", { target: id((i + 1) % 3), timeoutMs: 100, gossip: [dead(tooFar), { ...dead(tooFar), state: "suspect" }] })).toBe("ok");
  // Nothing happened, now or a few gossip rounds later.
  for (let round = 0; round < 2; round++) {
    for (const i of [0, 1, 2]) {
      const v = await viewOf(i, victim);
      expect(v?.state).toBe("alive");
      expect(v!.inc).toBeLessThan(before + 1000);
    }
    if (round === 0) await Bun.sleep(1000);
  }

  // An hour ahead is acceptable: the victim hears itself declared dead and refutes with a higher incarnation.
  const high = Date.now() + 3600_000;
  expect(await outcome(0, "swim.pingReq", { target: id(1), timeoutMs: 100, gossip: [dead(high)] })).toBe("ok");
  expect((await viewOf(0, victim))!.inc).toBe(high + 1);
  // Another peer told it first: it believes it for a moment, then the refutation wins in every view.
  const higher = high + 10;
  expect(await outcome(1, "swim.pingReq", { target: id(2), timeoutMs: 100, gossip: [dead(higher)] })).toBe("ok");
  await c.waitFor("the victim alive above the forged incarnation in every view", async () => {
    for (const i of [0, 1, 2]) {
      const v = await viewOf(i, victim);
      if (v?.state !== "alive" || v.inc <= higher) return false;
    }
    return true;
  });
  expect(await c.allSee([0, 1, 2], [0, 1, 2], "alive")).toBe(true);
}, 30_000);

test("index rows stamped a year ahead are refused, not stored, and not spread by anti-entropy", async () => {
  const ahead = stamp(Date.now() + YEAR_MS);
  const future = adminKey("MKFUTUREKEY000000001");
  const items = [
    { shard: "b", row: "a-year-ahead", entry: { ts: ahead, value: { createdMs: Date.now() } } },
    { shard: "k", row: future.accessKeyId, entry: { ts: stamp(MAX_WALL), value: future } },
    { shard: "o1", row: "a-year-ahead\0key", entry: { ts: ahead, value: null } },
  ];
  for (const i of [0, 1, 2]) {
    const { result } = await rpc.call(id(i), insiderMethod<Array<{ ok: boolean; code?: string; status?: number }>>("index.applyBatch"), { items }, { timeoutMs: 5000 });
    expect(result.map((r) => `${r.ok} ${r.code} ${r.status}`)).toEqual(items.map(() => "false ClockDrift 400"));
    expect(await outcome(i, "index.applyMany", { shard: "b", rows: [["a-year-ahead", items[0].entry]] })).toBe("ClockDrift 400");
    for (const it of items) expect(await rowOn(i, it.shard, it.row)).toBeNull();
  }

  // A replica that holds such rows anyway (stored before they were refused, or by a
  // compromised member): they stay where they are and go nowhere. Rows stamped now, planted
  // beside them, show that anti-entropy did run between the replicas.
  const now = adminKey("MKPLANTEDNOW00000001");
  const planted: Array<[string, string, IndexEntry]> = [
    ["b", "from-the-future", { ts: stamp(MAX_WALL), value: { createdMs: Date.now() } }],
    ["k", future.accessKeyId, { ts: stamp(MAX_WALL), value: future }],
    ["b", "planted-now", { ts: stamp(Date.now()), value: { createdMs: Date.now() } }],
    ["k", now.accessKeyId, { ts: stamp(Date.now()), value: now }],
  ];
  await c.stop(2);
  const store = await openIndexStore(path.join(c.peers[2].dataDir, "index"), { deletesAreFinal });
  for (const [shard, row, entry] of planted) expect(await store.apply(shard, row, entry)).toBe(true);
  await store.close();
  await c.restart(2);
  await learnAddrs();
  await c.waitFor("all alive after the restart", () => c.allSee([0, 1, 2], [0, 1, 2], "alive"), 15_000);
  await c.waitFor("anti-entropy spread the rows stamped now", async () => {
    for (const i of [0, 1]) for (const [shard, row] of planted.slice(2)) if (!(await rowOn(i, shard, row))) return false;
    return true;
  }, 15_000);
  for (const [shard, row] of planted.slice(0, 2)) {
    expect((await rowOn(2, shard, row))?.ts).toBe(stamp(MAX_WALL));
    for (const i of [0, 1]) expect(await rowOn(i, shard, row)).toBeNull();
  }
  // Reads and listings skip them everywhere, the holder included: the admin key dated 2286 opens nothing.
  for (const i of [0, 1, 2]) {
    const names = (await listBuckets(c.peer(i).httpUrl)).map((b) => b.name);
    expect(names).toContain("planted-now");
    expect(names).not.toContain("from-the-future");
    expect((await listKeys(c.peer(i).httpUrl)).map((k) => k.accessKeyId)).not.toContain(future.accessKeyId);
    expect(await statusAs(i, future)).toBe(401);
    expect(await statusAs(i, now)).toBe(200);
  }
  await servesReadsAndWrites("after-future-rows");
}, 60_000);

test("a revocation wins over any key row, even one stamped after it", async () => {
  const key = adminKey("MKREVOKEDKEY00000001");
  const apply = async (i: number, ts: string) => {
    const { result } = await rpc.call(id(i), insiderMethod<Array<{ ok: boolean; v?: boolean }>>("index.applyBatch"), { items: [{ shard: "k", row: key.accessKeyId, entry: { ts, value: key } }] }, { timeoutMs: 5000 });
    return result[0];
  };
  // Planted within the allowed drift, it is stored and works: an insider can write the index.
  const plantedAt = stamp(Date.now() + 20_000);
  // Stored on each peer: by this call, or already by anti-entropy from a peer planted just before.
  for (const i of [0, 1, 2]) {
    expect((await apply(i, plantedAt)).ok).toBe(true);
    expect((await rowOn(i, "k", key.accessKeyId))?.ts).toBe(plantedAt);
  }
  for (const i of [0, 1, 2]) expect(await statusAs(i, key)).toBe(200);

  expect((await revokeKey(c.peer(1).httpUrl, key.accessKeyId)).status).toBe(204);
  for (const i of [0, 1, 2]) expect(await statusAs(i, key)).toBe(401);

  // Planted again, stamped after the revocation (last writer wins would take it): refused.
  const replantedAt = stamp(Date.now() + 50_000);
  for (const i of [0, 1, 2]) {
    const tombstone = await rowOn(i, "k", key.accessKeyId);
    expect(tombstone?.value).toBeNull();
    expect(replantedAt > tombstone!.ts).toBe(true);
    expect(await apply(i, replantedAt)).toEqual({ ok: true, v: false });
    const { result } = await rpc.call(id(i), insiderMethod<number>("index.applyMany"), { shard: "k", rows: [[key.accessKeyId, { ts: replantedAt, value: key }]] }, { timeoutMs: 5000 });
    expect(result).toBe(0);
    expect((await rowOn(i, "k", key.accessKeyId))?.value).toBeNull();
  }
  for (const i of [0, 1, 2]) {
    expect(await statusAs(i, key)).toBe(401);
    expect((await listKeys(c.peer(i).httpUrl)).map((k) => k.accessKeyId)).not.toContain(key.accessKeyId);
  }
  // For the mesh the key is gone: revoking it again finds nothing.
  expect((await revokeKey(c.peer(0).httpUrl, key.accessKeyId)).status).toBe(404);
}, 30_000);
