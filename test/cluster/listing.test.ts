// Listing 2,000 keys on a 3-peer mesh against a model computed here: byte-order sorting,
// paging with opaque cursors, prefixes, delimiter roll-up across pages, and the same
// answers through every peer.
import { expect, test } from "bun:test";
import { withCluster, type Cluster } from "../harness/cluster.ts";
import { TEST_CHUNK, compareUtf8, listAllPages, listObjects, mapLimit, md5Hex, mustCreateBucket, mustPut, type ListOptions, type ListPage } from "../harness/http.ts";
import { seededBytes } from "../harness/random.ts";

const BUCKET = "listing-test";
const TOTAL = 2000;

interface Entry {
  key: string;
  size: number;
  etag: string;
  data: Uint8Array;
}

/** What a complete listing should hold: objects and common prefixes, each in byte order, and the two merged. */
interface Expected {
  objects: Array<{ key: string; size: number; etag: string }>;
  prefixes: string[];
  merged: string[];
}

/** 2,000 distinct keys: a dir/sub/file tree plus top-level, unicode and byte-order edge cases. */
function makeKeys(random: () => number): string[] {
  const pick = (n: number) => Math.floor(random() * n);
  const keys = new Set<string>([
    "dir3-sibling", // '-' (0x2d) sorts before '/' (0x2f)
    "dir3.sibling", // '.' (0x2e) too
    "dir30/x", // must not match prefix "dir3/"
    "Zebra", // upper case sorts before every lower-case key
    "with space/inner",
    "～-fullwidth", // U+FF5E: before emoji in byte order, after them in UTF-16 order
    "\u00e9t\u00e9", // é
  ]);
  for (let n = 0; keys.size < 60; n++) keys.add(`top-${n}.txt`);
  for (let n = 0; n < 12; n++) keys.add(`dir5/readme-${n}`);
  for (let n = 0; n < 10; n++) keys.add(`dir2/\u00fcn\u00efc\u00f6d\u00e9-${n}`);
  for (let n = 0; n < 8; n++) keys.add(`日本/文書-${n}`);
  for (let n = 0; n < 8; n++) keys.add(`😀-${n}`);
  for (let n = 0; n < 6; n++) keys.add(`😀/inner-${n}`);
  for (let n = 0; n < 6; n++) keys.add(`dir7/sub3/🚀${n}`);
  for (let n = 0; keys.size < TOTAL; n++) keys.add(`dir${pick(10)}/sub${pick(10)}/file${pick(100000)}`);
  return [...keys];
}

/** The model listing for `prefix` and `delimiter`, from entries sorted in byte order. */
function model(sorted: Entry[], prefix = "", delimiter?: string): Expected {
  const out: Expected = { objects: [], prefixes: [], merged: [] };
  for (const e of sorted) {
    if (!e.key.startsWith(prefix)) continue;
    const rest = e.key.slice(prefix.length);
    const cut = delimiter ? rest.indexOf(delimiter) : -1;
    if (cut >= 0) {
      const p = prefix + rest.slice(0, cut + delimiter!.length);
      if (out.prefixes[out.prefixes.length - 1] !== p) {
        out.prefixes.push(p);
        out.merged.push(p);
      }
    } else {
      out.objects.push({ key: e.key, size: e.size, etag: e.etag });
      out.merged.push(e.key);
    }
  }
  return out;
}

/** Concatenate pages, checking each page's size and sorting; returns what the pages add up to. */
function collect(pages: ListPage[], limit: number, label: string): Expected {
  const out: Expected = { objects: [], prefixes: [], merged: [] };
  for (const [n, page] of pages.entries()) {
    expect(Array.isArray(page.objects) && Array.isArray(page.prefixes)).toBe(true);
    const count = page.objects.length + page.prefixes.length;
    if (count > limit) throw new Error(`${label}: page ${n} has ${count} entries, limit ${limit}`);
    for (const o of page.objects) {
      if (o.lastModified === undefined || o.lastModified === null) throw new Error(`${label}: ${o.key} has no lastModified`);
      out.objects.push({ key: o.key, size: o.size, etag: o.etag });
    }
    out.prefixes.push(...page.prefixes);
    out.merged.push(...[...page.objects.map((o) => o.key), ...page.prefixes].sort(compareUtf8));
  }
  return out;
}

/** Page through `opts` with `limit` via peer `via`, and compare with the model. */
async function expectListing(c: Cluster, via: number, sorted: Entry[], opts: Omit<ListOptions, "cursor" | "limit">, limit: number): Promise<Expected> {
  const label = `list via peer ${via} ${JSON.stringify({ ...opts, limit })}`;
  const want = model(sorted, opts.prefix, opts.delimiter);
  const pages = await listAllPages(c.peer(via).httpUrl, BUCKET, { ...opts, limit }, want.merged.length + 2);
  const got = collect(pages, limit, label);
  // Keys first (short diff on failure), then everything.
  expect(`${label}: ${got.objects.length} objects, ${got.prefixes.length} prefixes`).toBe(`${label}: ${want.objects.length} objects, ${want.prefixes.length} prefixes`);
  expect(got.merged).toEqual(want.merged);
  expect(got.prefixes).toEqual(want.prefixes);
  expect(got.objects).toEqual(want.objects);
  console.log(`${label}: ${pages.length} pages`);
  return got;
}

test("2,000 keys list in UTF-8 byte order with paging, prefixes and delimiters, the same through every peer", async () => {
  await withCluster(3, { topology: "star", config: { chunkSize: TEST_CHUNK } }, async (c) => {
    await c.waitFor("all alive", () => c.allSee(c.running(), c.running(), "alive"));
    await mustCreateBucket(c.peer(0).httpUrl, BUCKET);

    const keys = makeKeys(c.random);
    expect(keys.length).toBe(TOTAL);
    const entries: Entry[] = keys.map((key, n) => {
      const data = seededBytes(Math.floor(c.random() * 48), c.seed + n);
      return { key, size: data.byteLength, etag: md5Hex(data), data };
    });
    const started = Date.now();
    await mapLimit(entries, 32, async (e, n) => {
      const put = await mustPut(c.peer(n % 3).httpUrl, BUCKET, e.key, e.data);
      expect(put.etag).toBe(e.etag);
    });
    console.log(`uploaded ${TOTAL} keys in ${Date.now() - started} ms`);
    const sorted = [...entries].sort((a, b) => compareUtf8(a.key, b.key));
    // The byte-order model really differs from JavaScript's UTF-16 order here.
    expect(sorted.map((e) => e.key)).not.toEqual([...keys].sort());

    // Everything, 137 at a time, through each peer.
    const full = await expectListing(c, 0, sorted, {}, 137);
    expect(new Set(full.objects.map((o) => o.key)).size).toBe(TOTAL);
    for (const via of [1, 2]) await expectListing(c, via, sorted, {}, 137);

    // Default limit is 1000 and the cap is 1000.
    const first = await listObjects(c.peer(1).httpUrl, BUCKET);
    expect(first.objects.length).toBeLessThanOrEqual(1000);
    expect(first.objects.length).toBeGreaterThan(0);
    expect(first.nextCursor).not.toBeNull();
    const capped = await listObjects(c.peer(2).httpUrl, BUCKET, { limit: 5000 });
    expect(capped.objects.length).toBeLessThanOrEqual(1000);
    expect(capped.nextCursor).not.toBeNull();

    // A prefix, no delimiter.
    await expectListing(c, 1, sorted, { prefix: "dir3/" }, 100);

    // Top level with "/": dir0/..dir9/ (and the other folders) roll up, 4 entries a page.
    const top = await expectListing(c, 2, sorted, { delimiter: "/" }, 4);
    for (let d = 0; d < 10; d++) expect(top.prefixes).toContain(`dir${d}/`);
    expect(top.prefixes).toContain("😀/");
    expect(top.objects.map((o) => o.key)).toContain("～-fullwidth");
    for (const via of [0, 1]) {
      const again = await expectListing(c, via, sorted, { delimiter: "/" }, 4);
      expect(again).toEqual(top);
    }

    // One folder down, 3 a page: dir5/sub0/..sub9/ plus the files directly in dir5/.
    const dir5 = await expectListing(c, 0, sorted, { prefix: "dir5/", delimiter: "/" }, 3);
    expect(dir5.prefixes).toEqual(Array.from({ length: 10 }, (_, s) => `dir5/sub${s}/`).filter((p) => sorted.some((e) => e.key.startsWith(p))));
    expect(dir5.objects.length).toBe(12);

    // A prefix that is not a whole folder name: "dir3" gives dir3-sibling, dir3.sibling, dir3/ and dir30/.
    const dir3 = await expectListing(c, 1, sorted, { prefix: "dir3", delimiter: "/" }, 2);
    expect(dir3.merged).toEqual(["dir3-sibling", "dir3.sibling", "dir3/", "dir30/"]);

    // Unicode prefixes.
    await expectListing(c, 2, sorted, { prefix: "😀" }, 5);
    await expectListing(c, 0, sorted, { prefix: "dir2/\u00fc" }, 1000);
    await expectListing(c, 1, sorted, { prefix: "dir7/sub3/", delimiter: "/" }, 7);

    // A prefix that matches nothing: one empty, final page.
    for (const via of [0, 1, 2]) {
      const none = await listObjects(c.peer(via).httpUrl, BUCKET, { prefix: "nothing-here/", delimiter: "/" });
      expect(none).toEqual({ objects: [], prefixes: [], nextCursor: null });
    }

    // Cursors are opaque but not tied to one peer: a listing may hop peers page by page.
    const hopped: ListPage[] = [];
    let cursor: string | undefined;
    for (let n = 0; n < 100; n++) {
      const page = await listObjects(c.peer(n % 3).httpUrl, BUCKET, { prefix: "dir1/", limit: 50, cursor });
      hopped.push(page);
      if (page.nextCursor === null) break;
      cursor = page.nextCursor;
    }
    expect(hopped[hopped.length - 1].nextCursor).toBeNull();
    expect(collect(hopped, 50, "hopping peers").objects).toEqual(model(sorted, "dir1/").objects);
  });
}, 60_000);
