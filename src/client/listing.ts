// Both sides' listings: a bucket's objects under a prefix (every page, through the native
// API's cursor) and the files under a local folder.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import type { Peer } from "./http.ts";
import type { Entry } from "./plan.ts";

/** An object as the listing shows it. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

/** Most pages a listing reads (1,000 objects each): ten million objects. */
const MAX_PAGES = 10_000;

/** Every page of a native listing route that pages with `cursor`/`nextCursor`, 1,000 entries at a time. */
async function* cursorPages<T extends { nextCursor: string | null }>(peer: Peer, route: string, query: Record<string, string>): AsyncGenerator<T> {
  let cursor: string | null = null;
  for (let page = 0; page < MAX_PAGES; page++) {
    const q = new URLSearchParams({ ...query, limit: "1000", ...(cursor ? { cursor } : {}) });
    const body: T = await peer.json(`${route}?${q}`);
    yield body;
    cursor = body.nextCursor;
    if (!cursor) return;
  }
}

/** One page after another of `bucket` under `prefix` (with `delimiter`, prefixes roll up). */
export function listPages(peer: Peer, bucket: string, prefix: string, delimiter = ""): AsyncGenerator<{ objects: ListedObject[]; prefixes: string[]; nextCursor: string | null }> {
  return cursorPages(peer, `/buckets/${encodeURIComponent(bucket)}/objects`, { prefix, ...(delimiter ? { delimiter } : {}) });
}

/** A multipart upload in progress, as the peer lists it. */
export interface OpenUpload {
  key: string;
  uploadId: string;
  initiated: string;
}

/** Every multipart upload in progress in `bucket`. */
export async function listOpenUploads(peer: Peer, bucket: string): Promise<OpenUpload[]> {
  const all: OpenUpload[] = [];
  for await (const page of cursorPages<{ uploads: OpenUpload[]; nextCursor: string | null }>(peer, `/buckets/${encodeURIComponent(bucket)}/multipart`, {})) all.push(...page.uploads);
  return all;
}

/** Every object under `prefix`. */
export async function listObjects(peer: Peer, bucket: string, prefix: string): Promise<ListedObject[]> {
  const all: ListedObject[] = [];
  for await (const page of listPages(peer, bucket, prefix)) all.push(...page.objects);
  return all;
}

/** The objects under a prefix as mirror entries, relative to the prefix (a prefix that is not a folder gets a '/'). */
export async function remoteEntries(peer: Peer, bucket: string, prefix: string): Promise<Entry[]> {
  const root = prefix && !prefix.endsWith("/") ? prefix + "/" : prefix;
  return (await listObjects(peer, bucket, root)).map((o) => ({ rel: o.key.slice(root.length), size: o.size, mtimeMs: Date.parse(o.lastModified) }));
}

/** Every regular file under `dir` (symbolic links followed to files; folders walked), relative with '/'. */
export async function localEntries(dir: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const walk = async (sub: string) => {
    let names;
    try {
      names = await readdir(path.join(dir, sub), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT" && sub === "") return;
      throw err;
    }
    for (const d of names) {
      const rel = sub ? `${sub}/${d.name}` : d.name;
      if (d.isDirectory()) await walk(rel);
      else if (d.isFile() || d.isSymbolicLink()) {
        const s = await stat(path.join(dir, rel)).catch(() => undefined);
        if (s?.isFile()) out.push({ rel, size: s.size, mtimeMs: s.mtimeMs });
      }
    }
  };
  await walk("");
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}
