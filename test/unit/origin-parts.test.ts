// The pieces of pull-through that need no mesh: freshness from an origin's headers, the split
// of one origin body between the fill and its first client (bounded, and a client that goes
// away or stalls does not stop the fill), and the checks of remote and origin bodies.
import { describe, expect, test } from "bun:test";
import { MeshError } from "../../src/errors.ts";
import { freshnessOf } from "../../src/remotes/freshness.ts";
import { validateOrigin } from "../../src/remotes/origin-config.ts";
import { split } from "../../src/remotes/pull-through.ts";
import { validateRemoteName, validateRemoteSpec } from "../../src/remotes/registry.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");

describe("freshness", () => {
  test("s-maxage over max-age over Expires over the default; no-store and private are not kept; no-cache always revalidates", () => {
    expect(freshnessOf("public, max-age=60, s-maxage=120", undefined, 3600, NOW)).toEqual({ store: true, ttlMs: 120_000 });
    expect(freshnessOf("max-age=60", new Date(NOW + 999_000).toUTCString(), 3600, NOW)).toEqual({ store: true, ttlMs: 60_000 });
    expect(freshnessOf(undefined, new Date(NOW + 30_000).toUTCString(), 3600, NOW)).toEqual({ store: true, ttlMs: 30_000 });
    expect(freshnessOf(undefined, "0", 3600, NOW)).toEqual({ store: true, ttlMs: 0 });
    expect(freshnessOf(undefined, undefined, 3600, NOW)).toEqual({ store: true, ttlMs: 3_600_000 });
    expect(freshnessOf("max-age=abc", undefined, 10, NOW)).toEqual({ store: true, ttlMs: 10_000 });
    expect(freshnessOf("No-Store", undefined, 3600, NOW).store).toBe(false);
    expect(freshnessOf("private, max-age=60", undefined, 3600, NOW).store).toBe(false);
    expect(freshnessOf("no-cache", undefined, 3600, NOW)).toEqual({ store: true, ttlMs: 0 });
  });
});

/** A source of `n` pieces of `size` bytes, counting how many were read. */
function source(n: number, size: number) {
  let read = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (read === n) return c.close();
      c.enqueue(new Uint8Array(size).fill(read++ & 0xff));
    },
  }, { highWaterMark: 0 });
  return { stream, read: () => read };
}

async function drain(s: ReadableStream<Uint8Array>): Promise<number> {
  let total = 0;
  for await (const p of s) total += p.byteLength;
  return total;
}

describe("split", () => {
  test("both readers get every byte; the client's body ends only once the fill says it is stored", async () => {
    const src = source(40, 64 * 1024);
    const { store, client, finish } = split(src.stream, true);
    let clientEnded = false;
    const b = drain(client!).then((n) => ((clientEnded = true), n));
    expect(await drain(store)).toBe(40 * 65536);
    await Bun.sleep(20);
    expect(clientEnded).toBe(false);
    finish();
    expect(await b).toBe(40 * 65536);
  });

  test("a client that does not read holds the fill to its bounded queue; one that cancels lets it finish", async () => {
    const src = source(64, 256 * 1024);
    const { store, client } = split(src.stream, true);
    const filled = drain(store);
    await Bun.sleep(100);
    // At most about 1 MiB queued for the client, plus the piece in hand.
    expect(src.read() * 256 * 1024).toBeLessThanOrEqual(1024 * 1024 + 2 * 256 * 1024);
    await client!.cancel();
    expect(await filled).toBe(64 * 256 * 1024);
  });

  test("a client that stalls past the limit is let go and the fill goes on", async () => {
    const src = source(16, 256 * 1024);
    const { store, client } = split(src.stream, true, 200);
    expect(await drain(store)).toBe(16 * 256 * 1024);
    const reader = client!.getReader();
    // It gets what was queued, then the error.
    await expect((async () => {
      for (;;) if ((await reader.read()).done) return "ended";
    })()).rejects.toThrow("stopped reading");
  });

  test("abort ends both sides", async () => {
    const src = source(1000, 1024);
    const { store, client, abort } = split(src.stream, true);
    abort(new Error("stop"));
    await expect(drain(client!)).rejects.toThrow("stop");
    expect(await drain(store).catch(() => -1)).toBeLessThan(1000 * 1024);
  });
});

describe("checks", () => {
  test("remote names and specs", () => {
    for (const ok of ["a", "web-1", "x".repeat(63)]) expect(() => validateRemoteName(ok)).not.toThrow();
    for (const bad of ["", "-a", "A", "a_b", "x".repeat(64), "a/b"]) expect(() => validateRemoteName(bad)).toThrow(MeshError);
    expect(validateRemoteSpec({ type: "s3", endpoint: "https://s3.example", bucket: "b", region: "eu", credentials: { accessKeyId: "k", secretAccessKey: "s" } })).toMatchObject({ type: "s3", bucket: "b" });
    for (const bad of [null, [], { type: "http" }, { type: "nfs", endpoint: "http://h" }, { type: "http", endpoint: "h" }, { type: "http", endpoint: "http://u:p@h" }, { type: "http", endpoint: "http://h", credentials: "s" }, { type: "http", endpoint: "http://h", region: "" }]) {
      expect(() => validateRemoteSpec(bad)).toThrow(MeshError);
    }
  });

  test("origins: defaults, bounds, and write-through", () => {
    expect(validateOrigin({ remote: "web" })).toEqual({ remote: "web", prefix: "", mode: "pull-through", defaultTtlSeconds: 3600, negativeTtlSeconds: 60, staleIfErrorSeconds: 86400 });
    for (const bad of [{}, { remote: "" }, { remote: "w", defaultTtlSeconds: -1 }, { remote: "w", negativeTtlSeconds: 0.5 }, { remote: "w", staleIfErrorSeconds: 1e12 }, { remote: "w", prefix: 3 }, { remote: "w", extra: true }]) {
      expect(() => validateOrigin(bad)).toThrow(expect.objectContaining({ code: "InvalidArgument" }));
    }
    expect(validateOrigin({ remote: "w", mode: "write-through", prefix: "p/" })).toMatchObject({ remote: "w", prefix: "p/", mode: "write-through" });
  });
});

test("an origin that stops sending mid-body fails the fill and its client", async () => {
  let sent = 0;
  const stuck = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent++ < 2) c.enqueue(new Uint8Array(1024));
      else await new Promise(() => {});
    },
  }, { highWaterMark: 0 });
  const { store, client } = split(stuck, true, 30_000, 150);
  const clientRead = drain(client!).then(() => "ended", (err: Error) => err.message);
  await expect(drain(store)).rejects.toThrow("sent nothing");
  expect(await clientRead).toContain("sent nothing");
});
