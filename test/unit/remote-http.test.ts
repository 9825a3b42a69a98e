// The HTTP origin adapter (src/remotes/http-backend.ts) against a real Bun.serve origin on
// 127.0.0.1 that counts its requests: info from headers, whole and ranged reads, an origin
// that ignores Range, conditional reads (304, 412), absence, failures and a silent origin.
import { afterAll, expect, test } from "bun:test";
import { OriginError } from "../../src/remotes/backend.ts";
import { createHttpBackend } from "../../src/remotes/http-backend.ts";

const BODY = new TextEncoder().encode("0123456789abcdefghij");
const ETAG = '"v1"';
const hits = new Map<string, number>();
let stall: Promise<void> = Promise.resolve();

const origin = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  async fetch(req) {
    const url = new URL(req.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const base = { etag: ETAG, "last-modified": new Date(0).toUTCString(), "content-type": "text/plain", "cache-control": "max-age=60", "x-meta-owner": "ann" };
    if (url.pathname === "/slow/a.txt") await stall;
    if (url.pathname === "/broken.txt") return new Response("no", { status: 500 });
    if (url.pathname !== "/files/dir/a%20b.txt" && url.pathname !== "/files/plain.txt" && url.pathname !== "/slow/a.txt") return new Response("missing", { status: 404 });
    if (req.headers.get("if-none-match") === ETAG) return new Response(null, { status: 304, headers: base });
    const ifMatch = req.headers.get("if-match");
    if (ifMatch && ifMatch !== ETAG) return new Response(null, { status: 412 });
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.get("range") ?? "");
    if (range && url.pathname !== "/files/plain.txt") {
      const [start, end] = [Number(range[1]), Math.min(Number(range[2]), BODY.length - 1)];
      return new Response(BODY.slice(start, end + 1), { status: 206, headers: { ...base, "content-range": `bytes ${start}-${end}/${BODY.length}` } });
    }
    return new Response(BODY, { headers: base });
  },
});
afterAll(() => origin.stop(true));

const endpoint = `http://127.0.0.1:${origin.port}`;
const text = async (body: ReadableStream<Uint8Array>) => new TextDecoder().decode(await new Response(body).arrayBuffer());

test("head and get: info from the origin's headers, keys as encoded path pieces under the prefix", async () => {
  const remote = createHttpBackend({ endpoint: `${endpoint}/`, prefix: "files/" });
  expect(remote.capabilities).toEqual({ write: false, list: false });
  const info = await remote.head("dir/a b.txt");
  expect(info).toEqual({ key: "dir/a b.txt", size: 20, etag: ETAG, lastModified: 0, contentType: "text/plain", meta: { owner: "ann" }, cacheControl: "max-age=60", expires: undefined });
  const got = await remote.get("dir/a b.txt");
  if (!got || typeof got === "string") throw new Error(`expected a body, got ${got}`);
  expect(await text(got.body)).toBe("0123456789abcdefghij");
  expect(got.range).toBeUndefined();
  expect(hits.get("/files/dir/a%20b.txt")).toBe(2);
});

test("ranged reads: a 206 says its span and the whole size; an origin that ignores Range gives the whole object", async () => {
  const remote = createHttpBackend({ endpoint, prefix: "files/" });
  const part = await remote.get("dir/a b.txt", { range: { start: 5, end: 9 }, ifMatch: ETAG });
  if (!part || typeof part === "string") throw new Error(`expected a body, got ${part}`);
  expect(part.range).toEqual({ start: 5, end: 9 });
  expect(part.info.size).toBe(20);
  expect(await text(part.body)).toBe("56789");
  const whole = await remote.get("plain.txt", { range: { start: 5, end: 9 } });
  if (!whole || typeof whole === "string") throw new Error(`expected a body, got ${whole}`);
  expect(whole.range).toBeUndefined();
  expect(await text(whole.body)).toBe("0123456789abcdefghij");
});

test("conditional reads: 304 is not-modified, a failed If-Match is changed; absence is null", async () => {
  const remote = createHttpBackend({ endpoint, prefix: "files/" });
  expect(await remote.get("plain.txt", { ifNoneMatch: ETAG })).toBe("not-modified");
  expect(await remote.get("dir/a b.txt", { ifMatch: '"v0"' })).toBe("changed");
  expect(await remote.get("nothing.txt")).toBeNull();
  expect(await remote.head("nothing.txt")).toBeNull();
});

test("failures are OriginError naming the host only: a 500, a closed port, a silent origin", async () => {
  const remote = createHttpBackend({ endpoint: `http://user:secret@127.0.0.1:${origin.port}` });
  const err = await remote.get("broken.txt").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OriginError);
  expect((err as OriginError).status).toBe(502);
  expect((err as Error).message).toBe(`origin 127.0.0.1:${origin.port} answered 500`);
  expect((err as Error).message).not.toContain("secret");

  const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
  const closedPort = closed.port;
  closed.stop(true);
  expect(await createHttpBackend({ endpoint: `http://127.0.0.1:${closedPort}` }).head("x").catch((e: unknown) => e)).toBeInstanceOf(OriginError);

  let release!: () => void;
  stall = new Promise((r) => (release = r));
  const silent = await createHttpBackend({ endpoint, timeoutMs: 200 }).get("slow/a.txt").catch((e: unknown) => e);
  release();
  expect((silent as Error).message).toBe(`origin 127.0.0.1:${origin.port} did not answer within 200 ms`);
  expect(() => createHttpBackend({ endpoint: "ftp://example.invalid/" })).toThrow(OriginError);
});

test("the deadline is for the answer's head: a body that streams for longer than it is read whole", async () => {
  const slow = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: () =>
      new Response(
        new ReadableStream({
          async pull(c) {
            await Bun.sleep(100);
            c.enqueue(new TextEncoder().encode("part;"));
            if (++sent === 5) c.close();
          },
        }),
      ),
  });
  let sent = 0;
  try {
    const got = await createHttpBackend({ endpoint: `http://127.0.0.1:${slow.port}`, timeoutMs: 200 }).get("long");
    if (!got || typeof got === "string") throw new Error(`expected a body, got ${got}`);
    expect(await text(got.body)).toBe("part;".repeat(5));
  } finally {
    slow.stop(true);
  }
});

test('a key with a "." or ".." segment is refused (fetch would fold it into another path)', async () => {
  const remote = createHttpBackend({ endpoint });
  expect(await remote.get("files/x/../plain.txt").catch((e: unknown) => (e as { code?: string }).code)).toBe("InvalidArgument");
  expect(await remote.head("./plain.txt").catch((e: unknown) => (e as { code?: string }).code)).toBe("InvalidArgument");
});
