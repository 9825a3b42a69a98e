// Index rows a peer may trust for a moment: the one shape of cache in the mesh. Each
// named cache is bounded (lru-cache, src/util/lru.ts) with a time to live, and a change
// made through any peer is forgotten everywhere through one RPC method, `cache.forget`:
// at once on the peer that made it, and on every other peer it can reach before the
// change is acknowledged. A peer it cannot reach keeps its entry until the TTL runs out,
// which is the staleness each cache accepts (a few seconds for keys and buckets).
//
// Manifests are not cached here: a forget that does not arrive would leave an overwritten
// or deleted object served until the TTL ran out. They have a cache of their own whose
// entries live under read leases, so that a write is acknowledged only once no peer can
// serve what it replaced (src/cache/manifest-leases.ts).
import { Type, type TBoolean, type TLiteral, type TObject, type TString, type TUnion } from "@sinclair/typebox";
import { defineMethod, type Rpc, type RpcMethod } from "../net/rpc.ts";
import { boundedCache } from "../util/lru.ts";

/** The caches there are; a new one is named here and defined by its owner. */
export type CacheName = "keys" | "buckets" | "schemas" | "remotes" | "origins" | "encryption" | "cors" | "versioning";

/** The name of the RPC method that drops one entry of one cache on the peer it is sent to. */
export const FORGET_METHOD = "cache.forget";

/** Its params: one shape per cache, so a key no cache could hold is refused as invalid params. */
type ForgetParams = TUnion<Array<TObject<{ cache: TLiteral<CacheName>; key: TString }>>>;
type ForgetMethod = RpcMethod<ForgetParams, TBoolean>;
/** How long a forget waits for each peer before leaving that peer to its TTL. */
export const FORGET_TIMEOUT_MS = 2000;

/** How a cache is bounded. */
export interface CacheSpec {
  /** At most this many entries; the least recently used goes first. */
  max: number;
  /** How long a found value is trusted. */
  ttlMs: number;
  /** How long an absence (a `null` from the loader) is trusted; 0 or omitted: absences are not remembered. */
  missTtlMs?: number;
  /** What a key looks like: a forget for any other key is refused before it reaches the cache. */
  key: TString;
}

/** One named cache of index rows. `null` is "absent". */
export interface SharedCache<V> {
  /**
   * The value under `key`: remembered, or what `load` reads, which is then remembered
   * unless a forget of this cache happened while it was read (that read may predate the change).
   */
  get(key: string, load: () => Promise<V | null>): Promise<V | null>;
  /** What `get` would answer from memory now (`{value}`, null included), or undefined: the hot paths' way to skip an await. */
  peek(key: string): { value: V | null } | undefined;
  /** Remember a value this peer has just written (no forget needed: it is the newest). */
  remember(key: string, value: V): void;
  /** Drop the entry here at once, then on every other live peer (waits for each, at most FORGET_TIMEOUT_MS). */
  forget(key: string): Promise<void>;
  /** Entries held now (at most the spec's max). */
  readonly size: number;
}

/** Every shared cache of one peer, and the RPC method that forgets their entries. */
export interface SharedCaches {
  /** A new cache; every cache is defined before `start`. */
  define<V>(name: CacheName, spec: CacheSpec): SharedCache<V>;
  /** Serve `cache.forget` for the caches defined so far. */
  start(): void;
  /** Withdraw it. */
  stop(): void;
}

/** What the caches need: who this peer is, whom to tell, and how. */
export interface SharedCachesDeps {
  self: string;
  rpc: Pick<Rpc, "register" | "unregister" | "call">;
  /** Peers believed alive (this one may be among them). */
  livePeers(): string[];
  /** The clock entry ages are measured with (tests inject one). */
  now?: () => number;
}

/** One remembered value (boxed: lru-cache cannot hold null). */
interface Entry<V> {
  value: V | null;
}

/** The caches of one peer. */
export function createSharedCaches(deps: SharedCachesDeps): SharedCaches {
  const drops = new Map<string, (key: string) => void>();
  const keySchemas = new Map<CacheName, TString>();
  // Defined once every cache is (its params list them all), at the first start or forget.
  let method: ForgetMethod | undefined;
  const forgetMethod = (): ForgetMethod =>
    (method ??= defineMethod(FORGET_METHOD, {
      params: Type.Union([...keySchemas].map(([name, key]) => Type.Object({ cache: Type.Literal(name), key }, { additionalProperties: false }))),
      result: Type.Boolean(),
    }));

  return {
    define<V>(name: CacheName, spec: CacheSpec): SharedCache<V> {
      if (method) throw new Error(`cache ${name} is defined after cache.forget was defined`);
      if (drops.has(name)) throw new Error(`cache ${name} is defined twice`);
      const lru = boundedCache<string, Entry<V>>({ max: spec.max, ttlMs: spec.ttlMs }, deps.now);
      // Bumped by every forget: a read that started before one must not store what it read.
      let generation = 0;
      const drop = (key: string) => {
        generation++;
        lru.delete(key);
      };
      drops.set(name, drop);
      keySchemas.set(name, spec.key);
      return {
        async get(key, load) {
          const hit = lru.get(key);
          if (hit) return hit.value;
          const seen = generation;
          const value = await load();
          if (seen === generation) {
            if (value !== null) lru.set(key, { value });
            else if (spec.missTtlMs) lru.set(key, { value }, spec.missTtlMs);
          }
          return value;
        },
        peek: (key) => lru.get(key),
        remember: (key, value) => lru.set(key, { value }),
        async forget(key) {
          drop(key);
          const others = deps.livePeers().filter((p) => p !== deps.self);
          await Promise.all(others.map((p) => deps.rpc.call(p, forgetMethod(), { cache: name, key }, { timeoutMs: FORGET_TIMEOUT_MS }).catch(() => {})));
        },
        get size() {
          return lru.size;
        },
      };
    },

    start() {
      deps.rpc.register(forgetMethod(), async ({ params: { cache, key } }) => {
        drops.get(cache)?.(key);
        return { result: true };
      });
    },
    stop: () => deps.rpc.unregister(forgetMethod()),
  };
}
