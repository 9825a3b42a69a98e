// The one conformance suite every remote adapter runs (issue 15): absence, round trips of
// bytes, content type and user metadata, an empty object, awkward keys, ranged and
// conditional reads, paged listings, deletes, and failures (a refused connection, a 500)
// that surface as OriginError without a secret or a URL. Read-only adapters get their objects
// through `seed` (written straight into their origin); a target says how to build the same
// adapter at another endpoint so the failure cases can point it at a dead or broken one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MeshError } from "../../src/errors.ts";
import { OriginError, type RemoteBackend, type RemoteObjectInfo } from "../../src/remotes/backend.ts";
import { freePort } from "./ports.ts";

/** What a target's setup hands the suite. */
export interface ConformanceTarget {
  backend: RemoteBackend;
  cleanup(): Promise<void>;
}

/** A remote's documented departures from the contract, asserted as they are (not skipped). */
export interface Quirks {
  /** A range ending at byte 0 ("bytes=0-0") reads to the end of the object. */
  zeroEndRangeReadsToEnd?: boolean;
  /** If-Match is not checked: a wrong ETag reads the object. */
  ignoresIfMatch?: boolean;
}

/** How the suite treats one target. */
export interface ConformanceOptions {
  /** The adapter has no put/delete: objects come through `seed`, and the put and delete cases check that it has none. */
  readOnly?: boolean;
  /** Write an object straight into the remote (read-only targets). */
  seed?(key: string, bytes: Uint8Array, info: { contentType?: string; meta: Record<string, string> }): Promise<void>;
  /** The same adapter with the same secrets, at another endpoint (`http://127.0.0.1:port`). */
  elsewhere(endpoint: string): RemoteBackend;
  /** Strings no error message may contain: the target's secrets and its full endpoint URL. */
  secrets: string[];
  /** "refused" for adapters that put keys in a URL path: a "." or ".." segment is InvalidArgument rather than a read of another key. */
  dotSegments?: "kept" | "refused";
  quirks?: Quirks;
}

const T = 20_000;
const enc = (s: string) => new TextEncoder().encode(s);
const text = async (body: ReadableStream<Uint8Array>) => new TextDecoder().decode(await new Response(body).arrayBuffer());

/** The body of a read that must have one. */
async function mustGet(remote: RemoteBackend, key: string, opts?: Parameters<RemoteBackend["get"]>[1]) {
  const got = await remote.get(key, opts);
  if (!got || typeof got === "string") throw new Error(`get ${JSON.stringify(key)}: expected a body, got ${got}`);
  return { ...got, text: await text(got.body) };
}

/** Run the suite against one adapter; `label` names the describe block. */
export function runConformance(label: string, setup: () => Promise<ConformanceTarget>, opts: ConformanceOptions): void {
  describe(`remote conformance: ${label}`, () => {
    let target: ConformanceTarget;
    let remote: RemoteBackend;
    // Names are unique per run so a target reused across runs (a shared emulator) starts clean.
    const run = `c${Date.now().toString(36)}`;
    const k = (name: string) => `${run}/${name}`;

    /** Store an object: through put, or through the target's seed when read-only. */
    async function store(key: string, bytes: Uint8Array, info: { contentType?: string; meta: Record<string, string> } = { meta: {} }): Promise<void> {
      if (opts.readOnly) {
        if (!opts.seed) throw new Error("a read-only target needs seed");
        return opts.seed(key, bytes, info);
      }
      if (!remote.put) throw new Error(`${label} has no put but is not marked readOnly`);
      await remote.put(key, bytes, info);
    }

    beforeAll(async () => {
      target = await setup();
      remote = target.backend;
      expect(remote.capabilities.write).toBe(!opts.readOnly);
    }, T);
    afterAll(async () => {
      await target?.cleanup();
    }, T);

    test("head and get of a missing key are null", async () => {
      expect(await remote.head(k("missing"))).toBeNull();
      expect(await remote.get(k("missing"))).toBeNull();
    }, T);

    test("a round trip keeps bytes, content type and user metadata (names lowercased)", async () => {
      const body = enc("hello, remote world\n");
      await store(k("hello.txt"), body, { contentType: "text/plain", meta: { Owner: "ann", project: "mesh" } });
      const info = (await remote.head(k("hello.txt"))) as RemoteObjectInfo;
      expect(info).not.toBeNull();
      expect(info.key).toBe(k("hello.txt"));
      expect(info.size).toBe(body.byteLength);
      expect(info.contentType).toStartWith("text/plain");
      expect(info.meta).toEqual({ owner: "ann", project: "mesh" });
      expect(info.etag).toBeString();
      const got = await mustGet(remote, k("hello.txt"));
      expect(got.text).toBe("hello, remote world\n");
      expect(got.range).toBeUndefined();
      expect(got.info.etag).toBe(info.etag);
      expect(got.info.meta).toEqual({ owner: "ann", project: "mesh" });
    }, T);

    test("a put of a stream of unknown length (several chunks) reads back whole", async () => {
      if (opts.readOnly) {
        expect(remote.put).toBeUndefined();
        return;
      }
      const chunks = [enc("first chunk;"), new Uint8Array(70_000).fill(120), enc(";last")];
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          const next = chunks.shift();
          if (next) c.enqueue(next);
          else c.close();
        },
      });
      await remote.put!(k("streamed"), body, { contentType: "text/plain", meta: { way: "stream" } });
      const got = await mustGet(remote, k("streamed"));
      expect(got.text).toBe(`first chunk;${"x".repeat(70_000)};last`);
      expect(got.info.meta).toEqual({ way: "stream" });
    }, T);

    test("an empty object", async () => {
      await store(k("empty"), new Uint8Array(0));
      expect((await remote.head(k("empty")))?.size).toBe(0);
      expect((await mustGet(remote, k("empty"))).text).toBe("");
    }, T);

    test("keys with spaces and unicode", async () => {
      for (const name of ["with space/and more.txt", "ünïcødé/日本語 ✓.txt"]) {
        await store(k(name), enc(name));
        expect((await remote.head(k(name)))?.size).toBe(enc(name).byteLength);
        expect((await mustGet(remote, k(name))).text).toBe(name);
      }
    }, T);

    test('a key with a ".." segment is its own key, or refused: never another key', async () => {
      const dotted = k("a/b/../c");
      await store(k("a/c"), enc("the other key"));
      if (opts.dotSegments === "refused") {
        const err = await remote.get(dotted).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(MeshError);
        expect((err as MeshError).code).toBe("InvalidArgument");
        expect(await remote.head(dotted).catch((e: unknown) => (e as MeshError).code)).toBe("InvalidArgument");
        return;
      }
      await store(dotted, enc("dotted"));
      expect((await mustGet(remote, dotted)).text).toBe("dotted");
      expect((await mustGet(remote, k("a/c"))).text).toBe("the other key");
    }, T);

    test("ranged reads: first byte, middle, last byte, an end past the end", async () => {
      await store(k("digits"), enc("0123456789"));
      const cases: [number, number, string, number][] = [
        opts.quirks?.zeroEndRangeReadsToEnd ? [0, 0, "0123456789", 9] : [0, 0, "0", 0],
        [3, 6, "3456", 6],
        [9, 9, "9", 9],
        [7, 100, "789", 9],
      ];
      for (const [start, end, want, wantEnd] of cases) {
        const got = await mustGet(remote, k("digits"), { range: { start, end } });
        expect(got.text).toBe(want);
        expect(got.range).toEqual({ start, end: wantEnd });
        expect(got.info.size).toBe(10);
      }
    }, T);

    test("conditional reads: the right If-Match reads, a wrong one is changed, a current If-None-Match is not-modified", async () => {
      await store(k("cond"), enc("version one"));
      const etag = (await remote.head(k("cond")))?.etag;
      expect(etag).toBeString();
      expect((await mustGet(remote, k("cond"), { ifMatch: etag })).text).toBe("version one");
      expect((await mustGet(remote, k("cond"), { ifMatch: etag, range: { start: 0, end: 6 } })).text).toBe("version");
      if (opts.quirks?.ignoresIfMatch) expect((await mustGet(remote, k("cond"), { ifMatch: '"not-the-etag"' })).text).toBe("version one");
      else expect(await remote.get(k("cond"), { ifMatch: '"not-the-etag"' })).toBe("changed");
      expect(await remote.get(k("cond"), { ifNoneMatch: etag })).toBe("not-modified");
      expect((await mustGet(remote, k("cond"), { ifNoneMatch: '"not-the-etag"' })).text).toBe("version one");
    }, T);

    test("list: pages of a small limit, the cursor giving every key once, in order; an empty prefix result", async () => {
      if (!remote.list) {
        expect(remote.capabilities.list).toBe(false);
        return;
      }
      const names = ["l/a", "l/b", "l/c/1", "l/c/2", "l/d", "l/e", "l/f"].map(k);
      for (const name of names) await store(name, enc(name));
      await store(k("m/not-listed"), enc("x"));
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 20; page++) {
        const got = await remote.list(k("l/"), cursor, { limit: 3 });
        expect(got.objects.length).toBeLessThanOrEqual(3);
        for (const o of got.objects) {
          expect(o.size).toBe(enc(o.key).byteLength);
          seen.push(o.key);
        }
        cursor = got.next;
        if (cursor === null) break;
      }
      expect(cursor).toBeNull();
      expect(seen).toEqual(names);
      expect(await remote.list(k("nothing-here/"), null, { limit: 3 })).toEqual({ objects: [], next: null });
    }, T);

    test("delete, then head is null; deleting a missing key is fine", async () => {
      if (opts.readOnly) {
        expect(remote.delete).toBeUndefined();
        return;
      }
      await store(k("doomed"), enc("bye"));
      await remote.delete!(k("doomed"));
      expect(await remote.head(k("doomed"))).toBeNull();
      await remote.delete!(k("doomed"));
      await remote.delete!(k("never-was"));
    }, T);

    test("a remote that is down or answers 500 throws OriginError with no secret and no URL", async () => {
      const broken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("internal trouble", { status: 500 }) });
      try {
        const down = opts.elsewhere(`http://127.0.0.1:${await freePort()}`);
        const failing = opts.elsewhere(`http://127.0.0.1:${broken.port}`);
        const attempts: [string, () => Promise<unknown>][] = [
          ["down head", () => down.head(k("x"))],
          ["down get", () => down.get(k("x"))],
          ["500 head", () => failing.head(k("x"))],
          ["500 get", () => failing.get(k("x"))],
        ];
        if (!opts.readOnly) attempts.push(["500 put", () => failing.put!(k("x"), enc("x"), { meta: {} })]);
        if (failing.list) attempts.push(["500 list", () => failing.list!("", null)]);
        for (const [what, attempt] of attempts) {
          const err = await attempt().then(
            () => new Error(`${what} succeeded`),
            (e: unknown) => e,
          );
          if (!(err instanceof OriginError)) throw new Error(`${what}: expected OriginError, got ${String(err)}`);
          expect(err.status).toBe(502);
          for (const secret of [...opts.secrets, "http://"]) expect(err.message).not.toContain(secret);
        }
      } finally {
        broken.stop(true);
      }
    }, T);
  });
}
