// The shared cache of index rows (src/metadata/shared-cache.ts): bounded whatever clients
// ask for, misses trusted for less time than hits, a read that races a forget never
// stores what it read, and one `cache.forget` method for every cache, refusing keys no
// cache could hold. The forget crossing real peers is in test/cluster/auth.test.ts
// ("a revoked key is refused on every peer right after DELETE returns").
import { describe, expect, test } from "bun:test";
import { Type } from "@sinclair/typebox";
import { createAccessKeys, KEY_CACHE_MAX, nativeToken, type AccessKeysDeps } from "../../src/auth/access-keys.ts";
import { createSecretSealer } from "../../src/auth/sealed-secret.ts";
import { createSharedCaches, FORGET_METHOD, type SharedCachesDeps } from "../../src/metadata/shared-cache.ts";
import type { RpcMethod } from "../../src/net/rpc.ts";
import { mulberry32, seedFromEnv } from "../harness/random.ts";

/** An Rpc stand-in that records what is registered and called (the point here is the cache, not the network). */
function recordingRpc() {
  type Handler = (req: { from: string; params: unknown; signal: AbortSignal }) => Promise<unknown>;
  const registered = new Map<string, { method: RpcMethod; handler: Handler }>();
  const calls: Array<{ peer: string; method: string; params: unknown }> = [];
  const rpc = {
    register: (method: RpcMethod, handler: Handler) => void registered.set(method.name, { method, handler }),
    unregister: (method: RpcMethod) => void registered.delete(method.name),
    call: async (peer: string, method: RpcMethod, params: unknown) => (calls.push({ peer, method: method.name, params }), { result: true }),
  } as unknown as SharedCachesDeps["rpc"];
  return { rpc, registered, calls };
}

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

describe("the key cache under made-up key ids", () => {
  test("100,000 requests with random unknown key ids leave the key cache at its bound", async () => {
    const seed = seedFromEnv();
    const random = mulberry32(seed);
    const chars = (n: number, alphabet: string) => Array.from({ length: n }, () => alphabet[Math.floor(random() * alphabet.length)]).join("");
    let reads = 0;
    const index = { read: async () => (reads++, null), write: async () => {} } as unknown as AccessKeysDeps["index"];
    const caches = createSharedCaches({ self: "me", rpc: recordingRpc().rpc, livePeers: () => ["me"] });
    const keys = createAccessKeys({ self: "me", index, placement: {} as AccessKeysDeps["placement"], hlc: {} as AccessKeysDeps["hlc"], caches, sealer: createSecretSealer(new Uint8Array(32)) });

    const N = 100_000;
    let largest = 0;
    for (let i = 0; i < N; i++) {
      // Well-formed ids of AWS's shape, with tokens that look real: each one is a lookup.
      const id = "MK" + chars(18, BASE32);
      const token = i % 2 ? nativeToken(id, chars(40, BASE32)) : `mst_${id}_${chars(43, BASE32)}`;
      expect(await keys.byToken(token), `seed=${seed} request ${i}`).toBeNull();
      if (i % 1000 === 0) largest = Math.max(largest, keys.cachedLookups());
    }
    largest = Math.max(largest, keys.cachedLookups());
    expect(largest, `seed=${seed}`).toBeLessThanOrEqual(KEY_CACHE_MAX);
    expect(keys.cachedLookups(), `seed=${seed}`).toBe(KEY_CACHE_MAX);
    // Every made-up id was looked up once (ids this long do not repeat): the cache never answered for an id it did not hold.
    expect(reads, `seed=${seed}`).toBe(N);

    // Ids of the wrong shape never reach the index or the cache.
    for (let i = 0; i < 1000; i++) expect(await keys.byToken(`mst_${chars(10, "abc-")}_${chars(43, BASE32)}`)).toBeNull();
    expect(reads).toBe(N);
    expect(keys.cachedLookups()).toBe(KEY_CACHE_MAX);
  }, 60_000);
});

describe("a shared cache", () => {
  test("found values are trusted for ttlMs, absences for missTtlMs, and a cache without missTtlMs keeps no absence", async () => {
    const c = clock();
    const caches = createSharedCaches({ self: "me", rpc: recordingRpc().rpc, livePeers: () => [], now: c.now });
    const keys = caches.define<string>("keys", { max: 10, ttlMs: 5000, missTtlMs: 1000, key: Type.String() });
    const buckets = caches.define<true>("buckets", { max: 10, ttlMs: 2000, key: Type.String() });
    let loads = 0;
    const found = async () => (loads++, "value");
    const absent = async () => (loads++, null);

    expect(await keys.get("hit", found)).toBe("value");
    expect(await keys.get("miss", absent)).toBeNull();
    expect(loads).toBe(2);
    c.advance(999);
    expect(await keys.get("hit", found)).toBe("value");
    expect(await keys.get("miss", absent)).toBeNull();
    expect(loads).toBe(2);
    c.advance(2);
    expect(await keys.get("miss", absent)).toBeNull();
    expect(loads).toBe(3);
    expect(await keys.get("hit", found)).toBe("value");
    expect(loads).toBe(3);
    c.advance(4000);
    expect(await keys.get("hit", found)).toBe("value");
    expect(loads).toBe(4);

    expect(await buckets.get("gone", absent)).toBeNull();
    expect(await buckets.get("gone", absent)).toBeNull();
    expect(loads).toBe(6);
    expect(buckets.size).toBe(0);
  });

  test("a read that a forget overtakes is returned but not remembered", async () => {
    const caches = createSharedCaches({ self: "me", rpc: recordingRpc().rpc, livePeers: () => [] });
    const keys = caches.define<string>("keys", { max: 10, ttlMs: 60_000, key: Type.String() });
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const reading = keys.get("k", async () => (await slow, "before the change"));
    await keys.forget("k");
    release();
    expect(await reading).toBe("before the change");
    expect(keys.size).toBe(0);
    expect(await keys.get("k", async () => "after the change")).toBe("after the change");
    expect(await keys.get("k", async () => "not asked")).toBe("after the change");
  });

  test("forget drops the entry here at once and tells every other live peer through one method", async () => {
    const { rpc, registered, calls } = recordingRpc();
    const caches = createSharedCaches({ self: "me", rpc, livePeers: () => ["me", "p1", "p2"] });
    const keys = caches.define<string>("keys", { max: 10, ttlMs: 60_000, key: Type.String({ pattern: "^[A-Z0-9]{16,64}$" }) });
    const buckets = caches.define<true>("buckets", { max: 10, ttlMs: 60_000, key: Type.String({ minLength: 1, maxLength: 63 }) });
    expect(() => caches.define("keys", { max: 1, ttlMs: 1, key: Type.String() })).toThrow(/twice/);
    caches.start();
    expect(() => caches.define("buckets", { max: 1, ttlMs: 1, key: Type.String() })).toThrow(/after/);
    expect([...registered.keys()]).toEqual([FORGET_METHOD]);

    keys.remember("MKAAAAAAAAAAAAAAAAAA", "k");
    buckets.remember("photos", true);
    const forgetting = keys.forget("MKAAAAAAAAAAAAAAAAAA");
    expect(keys.size).toBe(0);
    await forgetting;
    expect(calls).toEqual(["p1", "p2"].map((peer) => ({ peer, method: FORGET_METHOD, params: { cache: "keys", key: "MKAAAAAAAAAAAAAAAAAA" } })));

    // What a peer receives: params checked against each cache's key shape, then the entry of the named cache dropped.
    const { method, handler } = registered.get(FORGET_METHOD)!;
    const check = method.checkParams;
    expect(check.Check({ cache: "keys", key: "MKAAAAAAAAAAAAAAAAAA" })).toBe(true);
    expect(check.Check({ cache: "buckets", key: "photos" })).toBe(true);
    for (const bad of [{}, { cache: "keys", key: "x".repeat(100) }, { cache: "buckets", key: "" }, { cache: "manifests", key: "b\0k" }, { cache: "keys", key: "MKAAAAAAAAAAAAAAAAAA", extra: 1 }]) {
      expect(check.Check(bad), JSON.stringify(bad)).toBe(false);
    }
    keys.remember("MKBBBBBBBBBBBBBBBBBB", "k");
    await handler({ from: "p1", params: { cache: "buckets", key: "photos" }, signal: new AbortController().signal });
    expect(buckets.size).toBe(0);
    expect(keys.size).toBe(1);
    expect(calls.length).toBe(2); // a forget received is not passed on
  });
});
