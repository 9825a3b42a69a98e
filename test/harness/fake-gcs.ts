// A small fake of exactly the Google Cloud Storage JSON API endpoints the gcs adapter (through
// @google-cloud/storage) uses, on 127.0.0.1: object metadata (GET /storage/v1/b/{b}/o/{name}),
// media (the same with ?alt=media: Range, a pinned ?generation=), multipart upload
// (POST /upload/storage/v1/b/{b}/o?uploadType=multipart: JSON metadata then the bytes, answered
// with md5Hash so the library's validation runs), delete, and the listing (prefix, maxResults,
// pageToken). Object names arrive escaped whole ("/" as %2F). Errors are GCS's JSON shape.
import { createHash } from "node:crypto";

/** One stored object. */
interface GcsObject {
  body: Uint8Array;
  generation: number;
  contentType: string;
  cacheControl?: string;
  metadata: Record<string, string>;
  updated: Date;
}

/** A running fake. */
export interface FakeGcs {
  endpoint: string;
  /** Requests seen, by "METHOD path-kind" (metadata, media, upload, delete, list). */
  requests: Map<string, number>;
  stop(): void;
}

const error = (code: number, message: string) => Response.json({ error: { code, message, errors: [{ message, reason: "fake" }] } }, { status: code });

/** Start a fake GCS holding the given (empty) buckets. */
export function startFakeGcs(buckets: string[]): FakeGcs {
  const store = new Map<string, Map<string, GcsObject>>(buckets.map((b) => [b, new Map()]));
  const requests = new Map<string, number>();
  let generations = 1_700_000_000_000_000;

  /** An object's JSON resource, as the JSON API describes it. */
  function resource(bucket: string, name: string, o: GcsObject) {
    return {
      kind: "storage#object",
      id: `${bucket}/${name}/${o.generation}`,
      name,
      bucket,
      generation: String(o.generation),
      metageneration: "1",
      contentType: o.contentType,
      cacheControl: o.cacheControl,
      size: String(o.body.byteLength),
      md5Hash: createHash("md5").update(o.body).digest("base64"),
      etag: Buffer.from(String(o.generation)).toString("base64"),
      updated: o.updated.toISOString(),
      timeCreated: o.updated.toISOString(),
      metadata: Object.keys(o.metadata).length ? o.metadata : undefined,
    };
  }

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const count = (kind: string) => requests.set(`${req.method} ${kind}`, (requests.get(`${req.method} ${kind}`) ?? 0) + 1);
      const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(url.pathname);
      if (upload && req.method === "POST") {
        count("upload");
        const objects = store.get(decodeURIComponent(upload[1]!));
        if (!objects) return error(404, "No such bucket");
        if (url.searchParams.get("uploadType") !== "multipart") return error(400, "this fake takes uploadType=multipart only");
        const boundary = /boundary=([^;]+)/.exec(req.headers.get("content-type") ?? "")?.[1];
        if (!boundary) return error(400, "multipart/related without a boundary");
        const { meta, body } = splitMultipart(new Uint8Array(await req.arrayBuffer()), boundary);
        const name = url.searchParams.get("name") ?? (meta.name as string);
        const o: GcsObject = {
          body,
          generation: ++generations,
          contentType: (meta.contentType as string) ?? "application/octet-stream",
          cacheControl: meta.cacheControl as string | undefined,
          metadata: (meta.metadata as Record<string, string>) ?? {},
          updated: new Date(),
        };
        objects.set(name, o);
        return Response.json(resource(decodeURIComponent(upload[1]!), name, o));
      }
      const m = /^\/storage\/v1\/b\/([^/]+)\/o(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m) return error(404, "Not Found");
      const bucket = decodeURIComponent(m[1]!);
      const objects = store.get(bucket);
      if (!objects) return error(404, "No such bucket");
      if (m[2] === undefined) {
        count("list");
        return list(bucket, objects, url);
      }
      const name = decodeURIComponent(m[2]);
      const o = objects.get(name);
      const pinned = url.searchParams.get("generation");
      if (req.method === "DELETE") {
        count("delete");
        if (!o) return error(404, "No such object");
        objects.delete(name);
        return new Response(null, { status: 204 });
      }
      if (req.method !== "GET") return error(405, "Method Not Allowed");
      if (!o || (pinned && Number(pinned) !== o.generation)) return error(404, `No such object: ${bucket}/${name}`);
      if (url.searchParams.get("alt") !== "media") {
        count("metadata");
        return Response.json(resource(bucket, name, o));
      }
      count("media");
      const headers: Record<string, string> = { "content-type": o.contentType, "x-goog-generation": String(o.generation), "x-goog-hash": `md5=${createHash("md5").update(o.body).digest("base64")}` };
      const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
      const size = o.body.byteLength;
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
        if (start >= size) return error(416, "Requested range not satisfiable");
        return new Response(o.body.slice(start, end + 1), { status: 206, headers: { ...headers, "content-range": `bytes ${start}-${end}/${size}` } });
      }
      return new Response(o.body, { headers });
    },
  });

  /** One page of a listing: names after the page token, sorted, with the prefix. */
  function list(bucket: string, objects: Map<string, GcsObject>, url: URL): Response {
    const prefix = url.searchParams.get("prefix") ?? "";
    const after = url.searchParams.get("pageToken") ? Buffer.from(url.searchParams.get("pageToken")!, "base64url").toString() : "";
    const max = Math.min(Number(url.searchParams.get("maxResults") ?? 1000), 1000);
    const names = [...objects.keys()].filter((n) => n.startsWith(prefix) && n > after).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const page = names.slice(0, max);
    const more = names.length > max;
    return Response.json({
      kind: "storage#objects",
      items: page.length ? page.map((n) => resource(bucket, n, objects.get(n)!)) : undefined,
      nextPageToken: more ? Buffer.from(page.at(-1)!).toString("base64url") : undefined,
    });
  }

  return { endpoint: `http://127.0.0.1:${server.port}`, requests, stop: () => void server.stop(true) };
}

/** The two parts of a multipart/related upload: the JSON metadata and the object's bytes. */
function splitMultipart(raw: Uint8Array, boundary: string): { meta: Record<string, unknown>; body: Uint8Array } {
  const buf = Buffer.from(raw);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let at = buf.indexOf(delimiter);
  while (at >= 0) {
    const next = buf.indexOf(delimiter, at + delimiter.length);
    if (next < 0) break;
    parts.push(buf.subarray(at + delimiter.length + 2, next - 2)); // past "\r\n", before "\r\n"
    at = next;
  }
  const bodyOf = (part: Buffer) => part.subarray(part.indexOf("\r\n\r\n") + 4);
  if (parts.length < 2) throw new Error("a multipart upload needs two parts");
  return { meta: JSON.parse(bodyOf(parts[0]!).toString("utf8")) as Record<string, unknown>, body: new Uint8Array(bodyOf(parts[1]!)) };
}
