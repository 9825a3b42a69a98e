// The pieces of the client limits, with injected clocks: token buckets, the bounded cache
// they and the key cache live in, the upload memory budget, address keys, and the flags.
import { describe, expect, test } from "bun:test";
import { addressKey, ClientLimits, isLoopback } from "../../src/api/client-limits.ts";
import { createAccessKeys, KEY_CACHE_MAX, type AccessKeysDeps } from "../../src/auth/access-keys.ts";
import { configFromArgs, DEFAULT_LIMITS, resolveConfig } from "../../src/config.ts";
import { ConfigError, SlowDownError } from "../../src/errors.ts";
import { BudgetTimeoutError, ByteBudget } from "../../src/util/byte-budget.ts";
import { boundedCache } from "../../src/util/lru.ts";
import { TokenBuckets } from "../../src/util/token-buckets.ts";
import { createSecretSealer } from "../../src/auth/sealed-secret.ts";
import { createSharedCaches, type SharedCachesDeps } from "../../src/metadata/shared-cache.ts";

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("token buckets", () => {
  test("a burst, then the refill rate; the wait says when the next token comes", () => {
    const c = clock();
    const b = new TokenBuckets({ perSecond: 10, burst: 5 }, c.now);
    for (let i = 0; i < 5; i++) expect(b.take("k")).toBe(0);
    expect(b.take("k")).toBeCloseTo(0.1, 5);
    expect(b.take("other")).toBe(0); // buckets are per id
    c.advance(250); // 2.5 tokens back
    expect(b.take("k")).toBe(0);
    expect(b.take("k")).toBe(0);
    expect(b.take("k")).toBeCloseTo(0.05, 5);
    c.advance(10_000); // never more than the burst
    for (let i = 0; i < 5; i++) expect(b.take("k")).toBe(0);
    expect(b.take("k")).toBeGreaterThan(0);
  });

  test("a rate of 0 is no limit", () => {
    const b = new TokenBuckets({ perSecond: 0, burst: 0 });
    for (let i = 0; i < 1000; i++) expect(b.take("k")).toBe(0);
    expect(b.size).toBe(0);
  });

  test("a flood of distinct ids cannot grow the buckets beyond their bound", () => {
    const b = new TokenBuckets({ perSecond: 1, burst: 1 }, Date.now, 1000);
    for (let i = 0; i < 20_000; i++) b.take(`id-${i}`);
    expect(b.size).toBeLessThanOrEqual(1000);
  });
});

describe("bounded cache", () => {
  test("keeps at most max entries, least recently used out first, and expires by age", () => {
    const c = clock();
    const cache = boundedCache<string, number>({ max: 3, ttlMs: 1000 }, c.now);
    cache.set("a", 1);
    cache.set("b", 2);
    cache.set("c", 3);
    expect(cache.get("a")).toBe(1); // a is now the most recent
    cache.set("d", 4);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.size).toBe(3);
    c.advance(1001);
    expect(cache.get("a")).toBeUndefined();
  });
});

describe("upload memory budget", () => {
  test("reservations beyond the budget wait for a release; one that fits goes ahead of a bigger one; waits end", async () => {
    const budget = new ByteBudget(100);
    const first = await budget.reserve(60, 1000);
    const order: string[] = [];
    const big = budget.reserve(80, 1000).then((r) => (order.push("big"), r));
    const small = budget.reserve(30, 1000).then((r) => (order.push("small"), r));
    await Bun.sleep(10);
    expect(order).toEqual(["small"]);
    expect(budget.inUse).toBe(90);
    first();
    first(); // a second release is a no-op
    (await small)();
    await big;
    expect(order).toEqual(["small", "big"]);
    expect(budget.inUse).toBe(80);
    await expect(budget.reserve(50, 20)).rejects.toBeInstanceOf(BudgetTimeoutError);
    expect(budget.waiting).toBe(0);
    // A request bigger than the whole budget runs alone rather than never.
    (await big)();
    const huge = await budget.reserve(1000, 10);
    expect(budget.inUse).toBe(100);
    huge();
    expect(budget.inUse).toBe(0);
  });

  test("an upload that waits too long is refused with SlowDown and counted", async () => {
    const limits = new ClientLimits({ ...DEFAULT_LIMITS, uploadMemoryBytes: 1024 * 1024, uploadMemoryWaitMs: 20 });
    const held = await limits.reserveUpload(1024 * 1024);
    await expect(limits.reserveUpload(1)).rejects.toBeInstanceOf(SlowDownError);
    expect(limits.counts.uploadMemoryRejected).toBe(1);
    held();
    expect(limits.status().uploadMemoryBytes).toBe(0);
  });
});

describe("client limits", () => {
  test("addresses: IPv6 clients by their /64, IPv4-mapped as IPv4; loopback recognised", () => {
    expect(addressKey("203.0.113.7")).toBe("203.0.113.7");
    expect(addressKey("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(addressKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect([isLoopback("127.0.0.1"), isLoopback("127.9.9.9"), isLoopback("::1"), isLoopback("::ffff:127.0.0.1"), isLoopback("10.0.0.1")]).toEqual([true, true, true, true, false]);
  });

  test("in flight: beyond the cap a request is refused until one finishes; /health always passes", () => {
    const limits = new ClientLimits({ ...DEFAULT_LIMITS, maxInflight: 2 });
    const req = (p: string) => new Request(`http://h${p}`);
    const a = limits.admit(req("/buckets"), "10.0.0.1");
    const b = limits.admit(req("/buckets"), "10.0.0.2");
    expect(typeof a).toBe("function");
    expect(typeof b).toBe("function");
    const refused = limits.admit(req("/buckets"), "10.0.0.3");
    expect(refused).toBeInstanceOf(SlowDownError);
    expect((refused as SlowDownError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect(typeof limits.admit(req("/health"), "10.0.0.3")).toBe("function");
    (a as () => void)();
    (a as () => void)(); // idempotent
    expect(typeof limits.admit(req("/buckets"), "10.0.0.3")).toBe("function");
    expect(limits.counts.inflightRejected).toBe(1);
  });

  test("a request detached as a long-lived stream leaves the in-flight count at once, and only once", () => {
    const limits = new ClientLimits({ ...DEFAULT_LIMITS, maxInflight: 1 });
    const stream = new Request("http://h/buckets/b/events/stream");
    const release = limits.admit(stream, "10.0.0.1") as () => void;
    expect(limits.admit(new Request("http://h/buckets"), "10.0.0.2")).toBeInstanceOf(SlowDownError);
    limits.detach(stream);
    expect(limits.status().inflight).toBe(0);
    const other = limits.admit(new Request("http://h/buckets"), "10.0.0.2");
    expect(typeof other).toBe("function");
    // The stream's end later releases nothing more: the other request still counts.
    release();
    limits.detach(stream);
    expect(limits.status().inflight).toBe(1);
  });

  test("loopback clients are exempt from the per-address limits unless limitLoopback is set", () => {
    const c = clock();
    const strict = { ...DEFAULT_LIMITS, perIp: { perSecond: 1, burst: 1 }, authFailures: { perSecond: 1, burst: 1 } };
    const lax = new ClientLimits(strict, c.now);
    for (let i = 0; i < 10; i++) expect(typeof lax.admit(new Request("http://h/x"), "127.0.0.1")).toBe("function");
    const tight = new ClientLimits({ ...strict, limitLoopback: true }, c.now);
    expect(typeof tight.admit(new Request("http://h/x"), "127.0.0.1")).toBe("function");
    expect(tight.admit(new Request("http://h/x"), "127.0.0.1")).toBeInstanceOf(SlowDownError);
    expect(tight.counts.rateLimited).toBe(1);
  });

  test("failed authentications: once the burst is spent the address is refused before anything else", () => {
    const c = clock();
    const limits = new ClientLimits({ ...DEFAULT_LIMITS, authFailures: { perSecond: 1, burst: 2 } }, c.now);
    const attempt = () => {
      const r = new Request("http://h/buckets");
      const verdict = limits.admit(r, "198.51.100.9");
      if (typeof verdict === "function") limits.authFailed(r);
      return verdict;
    };
    expect(typeof attempt()).toBe("function");
    expect(typeof attempt()).toBe("function");
    expect(attempt()).toBeInstanceOf(SlowDownError);
    expect(typeof limits.admit(new Request("http://h/buckets"), "198.51.100.10")).toBe("function");
    c.advance(1000);
    expect(typeof attempt()).toBe("function");
    expect(limits.counts.authFailuresLimited).toBe(1);
  });

  test("per key: SlowDown once a key's burst is spent", () => {
    const limits = new ClientLimits({ ...DEFAULT_LIMITS, perKey: { perSecond: 1, burst: 3 } }, clock().now);
    const r = new Request("http://h/x");
    for (let i = 0; i < 3; i++) limits.keyUsed(r, "K1");
    expect(() => limits.keyUsed(r, "K1")).toThrow(SlowDownError);
    limits.keyUsed(r, "K2");
    expect(limits.counts.rateLimited).toBe(1);
  });
});

describe("flags", () => {
  test("limits come from flags or MESH_* variables, with documented defaults; bad values are config errors", () => {
    const d = resolveConfig().limits;
    expect(d).toEqual(DEFAULT_LIMITS);
    expect([d.maxInflight, d.bodyIdleMs, d.uploadMemoryBytes]).toEqual([256, 30_000, 512 * 1024 * 1024]);
    const input = configFromArgs(["--max-inflight", "8", "--body-timeout", "1.5", "--upload-memory", "64", "--rate-per-key", "5", "--rate-auth-fail", "0"], { MESH_RATE_PER_IP: "50", MESH_MAX_INFLIGHT: "99" });
    const l = resolveConfig(input).limits;
    expect(l.maxInflight).toBe(8);
    expect(l.bodyIdleMs).toBe(1500);
    expect(l.uploadMemoryBytes).toBe(64 * 1024 * 1024);
    expect(l.perKey).toEqual({ perSecond: 5, burst: 10 });
    expect(l.perIp).toEqual({ perSecond: 50, burst: 100 });
    expect(l.authFailures).toEqual({ perSecond: 0, burst: 0 });
    for (const bad of [["--max-inflight", "0"], ["--body-timeout", "x"], ["--upload-memory", "0.5"], ["--rate-per-key", "-1"]]) {
      expect(() => resolveConfig(configFromArgs(bad, {}))).toThrow(ConfigError);
    }
  });
});

describe("access key cache", () => {
  test("lookups of made-up key ids never grow the cache beyond its bound", async () => {
    let reads = 0;
    const index = { read: async () => (reads++, null), write: async () => {} } as unknown as AccessKeysDeps["index"];
    const caches = createSharedCaches({ self: "me", rpc: {} as SharedCachesDeps["rpc"], livePeers: () => [] });
    const keys = createAccessKeys({ self: "me", index, placement: {} as AccessKeysDeps["placement"], hlc: {} as AccessKeysDeps["hlc"], caches, sealer: createSecretSealer(new Uint8Array(32)) });
    const n = KEY_CACHE_MAX + 5000;
    for (let i = 0; i < n; i++) expect(await keys.get(`MKUNKNOWN${String(i).padStart(11, "0")}`)).toBeNull();
    expect(reads).toBe(n);
    expect(keys.cachedLookups()).toBe(KEY_CACHE_MAX);
    // A recent miss is still answered from the cache.
    await keys.get(`MKUNKNOWN${String(n - 1).padStart(11, "0")}`);
    expect(reads).toBe(n);
  });
});
