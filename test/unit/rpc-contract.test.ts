// An RPC method's contract is checked before its handler runs: params against the schema
// the method declared, and any body against its limit; the caller checks the reply against
// the declared result. Two real libp2p nodes on loopback. Malformed calls are sent the way
// a buggy or hostile member would: with its own, looser definition of the same method.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { Type } from "@sinclair/typebox";
import { RemoteError } from "../../src/errors.ts";
import { startLibp2p, type MeshLibp2p } from "../../src/net/libp2p.ts";
import { createLinkFilter } from "../../src/net/link-filter.ts";
import { newMeshKeyText, parseMeshKey } from "../../src/net/mesh-key.ts";
import { createRpc, defineMethod, type Rpc } from "../../src/net/rpc.ts";
import { createLogger } from "../../src/util/log.ts";

const stop = new AbortController();
let nodes: MeshLibp2p[] = [];
let server: Rpc;
let client: Rpc;
let serverId: string;
/** Every call that reached a handler. */
const reached: unknown[] = [];

const Sum = defineMethod("sum", { params: Type.Object({ xs: Type.Array(Type.Integer(), { maxItems: 3 }) }), result: Type.Integer() });
const Store = defineMethod("store", { params: Type.Object({ name: Type.String({ maxLength: 8 }) }), result: Type.String(), maxBodyBytes: 16 });
/** Served with a result schema its callers do not share (a buggy member's version of "count"). */
const CountAsServed = defineMethod("count", { params: Type.Object({}), result: Type.Unknown() });
const Count = defineMethod("count", { params: Type.Object({}), result: Type.Integer({ minimum: 0 }) });
/** A stranger's definition of any method: anything goes in, anything comes back. */
const loose = (name: string) => defineMethod(name, { params: Type.Unknown(), result: Type.Unknown() });

beforeAll(async () => {
  const psk = parseMeshKey(newMeshKeyText(), "test");
  nodes = await Promise.all([0, 1].map(async () => startLibp2p({ privateKey: await generateKeyPair("Ed25519"), listen: ["/ip4/127.0.0.1/tcp/0"], meshKey: psk, filter: createLinkFilter() })));
  const quiet = createLogger("rpc", () => {}, "error");
  [server, client] = nodes.map((n) => createRpc(n, createLinkFilter(), quiet, stop.signal));
  serverId = nodes[0].peerId.toString();
  await nodes[1].peerStore.merge(nodes[0].peerId, { multiaddrs: nodes[0].getMultiaddrs() });

  server.register(Sum, async ({ params }) => {
    reached.push(params);
    // Typed from the schema: params.xs is number[].
    return { result: params.xs.reduce((a, b) => a + b, 0) };
  });
  server.register(Store, async ({ params, body }) => {
    reached.push(params);
    return { result: `${params.name}:${body?.byteLength ?? 0}` };
  });
  server.register(CountAsServed, async () => ({ result: -1 }));
  await server.start();
});
afterAll(async () => {
  stop.abort();
  await Promise.all(nodes.map((n) => n.stop()));
});

/** The result, or the error reply as "Code status: message" (sent with a stranger's definition of `method`). */
async function call(method: string, params: unknown, body?: Uint8Array): Promise<unknown> {
  try {
    return (await client.call(serverId, loose(method), params, { body, timeoutMs: 5000 })).result;
  } catch (err) {
    if (!(err instanceof RemoteError)) throw err;
    return `${err.code} ${err.status}: ${err.message}`;
  }
}

test("a call that keeps the contract reaches the handler", async () => {
  expect(await call("sum", { xs: [1, 2, 3] })).toBe(6);
  expect(await call("store", { name: "a" }, new Uint8Array(16))).toBe("a:16");
  expect(await call("store", { name: "a" })).toBe("a:0");
  expect(server.methods().sort()).toEqual(["count", "store", "sum"]);
});

test("params that break the schema get InvalidParams naming the place, and never reach the handler", async () => {
  reached.length = 0;
  expect(await call("sum", null)).toBe("InvalidParams 400: sum: params: Expected object");
  expect(await call("sum", {})).toBe("InvalidParams 400: sum: params/xs: Expected required property");
  expect(await call("sum", { xs: [1, 2, 3, 4] })).toMatch(/^InvalidParams 400: sum: params\/xs: Expected array length/);
  expect(await call("sum", { xs: [1, 2.5] })).toBe("InvalidParams 400: sum: params/xs/1: Expected integer");
  expect(await call("sum", { xs: [2 ** 60 + 0.5, "1"] })).toMatch(/^InvalidParams 400: sum: params\/xs\/1/);
  expect(await call("store", { name: "x".repeat(9) })).toMatch(/^InvalidParams 400: store: params\/name/);
  expect(reached).toEqual([]);
});

test("a body where none is allowed, or over the limit, is refused before the handler", async () => {
  reached.length = 0;
  expect(await call("sum", { xs: [] }, new Uint8Array(1))).toBe("InvalidParams 400: rpc: a body of 1 bytes exceeds the limit of 0");
  expect(await call("store", { name: "a" }, new Uint8Array(17))).toBe("InvalidParams 400: rpc: a body of 17 bytes exceeds the limit of 16");
  expect(reached).toEqual([]);
  // The peer is fine afterwards (the refused stream itself is reset: its body was never read).
  expect(await call("sum", { xs: [40, 2] })).toBe(42);
});

test("unknown methods are refused and not counted; a method is registered once", async () => {
  for (let i = 0; i < 20; i++) expect(await call(`nope.${i}`, {})).toBe(`UnknownMethod 400: no rpc method nope.${i}`);
  expect([...server.counters.received.keys()].sort()).toEqual(["store", "sum"]);
  expect(() => server.register(Sum, async () => ({ result: 0 }))).toThrow(/registered twice/);
});

test("the typed API: params and result follow the definition; a malformed call gets an error reply and the handler never runs", async () => {
  reached.length = 0;
  const { result } = await client.call(serverId, Sum, { xs: [20, 22] }, { timeoutMs: 5000 });
  const n: number = result; // typed by Sum's result schema
  expect(n).toBe(42);
  // @ts-expect-error: the compiler refuses params that break the definition...
  const typo = () => client.call(serverId, Sum, { xs: ["1"] }, { timeoutMs: 5000 });
  // ...and the server refuses them from a caller that got past it (or never had it).
  expect(await typo().catch((err: RemoteError) => `${err.code} ${err.status}: ${err.message}`)).toBe("InvalidParams 400: sum: params/xs/0: Expected integer");
  expect(reached).toEqual([{ xs: [20, 22] }]);
});

test("a reply that breaks the method's result schema is refused by the caller", async () => {
  const refusal = await client.call(serverId, Count, {}, { timeoutMs: 5000 }).catch((err: RemoteError) => `${err.code} ${err.status}: ${err.message}`);
  expect(refusal).toMatch(/^MalformedReply 502: rpc count from \w+: result: Expected integer to be greater or equal to 0/);
});

test("an unregistered method is unknown again, and can be registered anew", async () => {
  const Echo = defineMethod("echo", { params: Type.Object({ s: Type.String({ maxLength: 8 }) }), result: Type.String() });
  server.register(Echo, async ({ params }) => ({ result: params.s }));
  expect((await client.call(serverId, Echo, { s: "hi" }, { timeoutMs: 5000 })).result).toBe("hi");
  server.unregister(Echo);
  expect(server.methods()).not.toContain("echo");
  expect(await call("echo", { s: "hi" })).toBe("UnknownMethod 400: no rpc method echo");
  server.register(Echo, async ({ params }) => ({ result: params.s + "!" }));
  expect((await client.call(serverId, Echo, { s: "hi" }, { timeoutMs: 5000 })).result).toBe("hi!");
});

test("a call's signal ends it at once", async () => {
  const Slow = defineMethod("slow", { params: Type.Object({}), result: Type.Null() });
  server.register(Slow, async ({ signal }) => {
    await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
    return { result: null };
  });
  const aborter = new AbortController();
  const started = performance.now();
  const outcome = client.call(serverId, Slow, {}, { timeoutMs: 10_000, signal: aborter.signal }).catch((err: RemoteError) => `${err.code} ${err.status}`);
  setTimeout(() => aborter.abort(), 100);
  expect(await outcome).toBe("PeerUnreachable 503");
  expect(performance.now() - started).toBeLessThan(2000);
});
