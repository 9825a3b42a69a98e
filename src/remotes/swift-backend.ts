// An OpenStack Swift container over its REST API with fetch: v1 auth (X-Auth-User and
// X-Auth-Key for X-Storage-Url and X-Auth-Token, fetched again once when a token is refused)
// or a given token and storage URL; objects at {storage}/{container}/{key}; user metadata as
// X-Object-Meta-*; listings as JSON with prefix, marker and limit (the marker is the cursor).
import type { RemoteBackend, RemoteObjectInfo } from "./backend.ts";
import { answered, contentRange, deadline, watched, DEFAULT_REMOTE_TIMEOUT_MS, drop, hostOf, pathSafeKey, rangeHeader, smallText, unreachable } from "./remote-call.ts";
import { OriginError } from "./backend.ts";

/** Where a Swift container is and how to get a token. */
export interface SwiftRemoteSpec {
  /** With user and key: the v1 auth URL (`http://host:8080/auth/v1.0`). With a token: the storage URL (`http://host:8080/v1/AUTH_acct`). */
  endpoint: string;
  container: string;
  user?: string;
  key?: string;
  token?: string;
  timeoutMs?: number;
}

const META = "x-object-meta-";
/** Most objects one listing page asks for (Swift's own cap is 10,000). */
const MAX_PAGE = 10_000;

/** Info from an object's response headers. */
function infoOf(key: string, h: Headers): RemoteObjectInfo {
  const total = contentRange(h.get("content-range"))?.total;
  const lastModified = Date.parse(h.get("last-modified") ?? "");
  const meta: Record<string, string> = {};
  for (const [name, value] of h) if (name.startsWith(META)) meta[name.slice(META.length)] = decodeURIComponent(value);
  return {
    key,
    size: total ?? Number(h.get("content-length") ?? 0),
    etag: h.get("etag") ?? undefined,
    lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
    contentType: h.get("content-type") ?? undefined,
    meta,
    cacheControl: h.get("cache-control") ?? undefined,
    expires: h.get("expires") ?? undefined,
  };
}

/** One row of a JSON container listing. */
interface ListingRow {
  name?: string;
  subdir?: string;
  bytes: number;
  hash: string;
  last_modified: string;
  content_type: string;
}

/** A read-write, listable backend for a Swift container. */
export function createSwiftBackend(spec: SwiftRemoteSpec): RemoteBackend {
  if (!spec.token && !(spec.user && spec.key)) throw new OriginError("a swift remote needs user and key, or a token");
  const where = hostOf(spec.endpoint);
  const timeoutMs = spec.timeoutMs ?? DEFAULT_REMOTE_TIMEOUT_MS;
  let session: Promise<{ storageUrl: string; token: string }> | null = spec.token ? Promise.resolve({ storageUrl: spec.endpoint.replace(/\/+$/, ""), token: spec.token }) : null;

  /** v1 auth: the storage URL and a token for the user's key. */
  async function authenticate(signal?: AbortSignal): Promise<{ storageUrl: string; token: string }> {
    const d = deadline(timeoutMs, signal);
    let res: Response;
    try {
      res = await fetch(spec.endpoint, { headers: { "x-auth-user": spec.user!, "x-auth-key": spec.key! }, signal: d.signal });
    } catch (err) {
      throw unreachable(where, err, timeoutMs, d, signal);
    } finally {
      d.settle();
    }
    await drop(res);
    const storageUrl = res.headers.get("x-storage-url");
    const token = res.headers.get("x-auth-token");
    if (!res.ok) throw new OriginError(`origin ${where} refused its auth: ${res.status}`);
    if (!storageUrl || !token) throw new OriginError(`origin ${where} answered its auth without a storage URL and token`);
    return { storageUrl: storageUrl.replace(/\/+$/, ""), token };
  }

  /** One call at `path` under the container (`""` for the container itself), fetching a token first if need be. */
  async function call(method: string, path: string, init: { headers?: Record<string, string>; body?: Uint8Array | ReadableStream<Uint8Array>; signal?: AbortSignal; query?: URLSearchParams }): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      if (!session) {
        session = authenticate(init.signal);
        session.catch(() => (session = null));
      }
      const { storageUrl, token } = await session;
      const url = `${storageUrl}/${encodeURIComponent(spec.container)}${path}${init.query ? `?${init.query}` : ""}`;
      const d = deadline(timeoutMs, init.signal);
      // A streamed upload's answer comes after its last byte: its deadline is for a stall.
      const body = init.body instanceof ReadableStream ? watched(init.body, d.touch) : init.body;
      let res: Response;
      try {
        res = await fetch(url, { method, headers: { ...init.headers, "x-auth-token": token }, body, signal: d.signal, duplex: "half" } as RequestInit);
      } catch (err) {
        throw unreachable(where, err, timeoutMs, d, init.signal);
      } finally {
        d.settle();
      }
      // An expired token: fetch a new one once (a given token cannot be renewed).
      if (res.status === 401 && attempt === 0 && !spec.token && !(init.body instanceof ReadableStream)) {
        await drop(res);
        session = null;
        continue;
      }
      return res;
    }
  }

  const objectPath = (key: string) => `/${pathSafeKey(key).split("/").map(encodeURIComponent).join("/")}`;

  return {
    type: "swift",
    capabilities: { write: true, list: true },

    async head(key, opts = {}) {
      const res = await call("HEAD", objectPath(key), { signal: opts.signal });
      if (res.status === 404) return null;
      if (!res.ok) throw answered(where, res.status);
      return infoOf(key, res.headers);
    },

    async get(key, opts = {}) {
      const headers: Record<string, string> = {};
      if (opts.range) headers.range = rangeHeader(opts.range);
      if (opts.ifMatch) headers["if-match"] = opts.ifMatch;
      if (opts.ifNoneMatch) headers["if-none-match"] = opts.ifNoneMatch;
      const res = await call("GET", objectPath(key), { headers, signal: opts.signal });
      if (res.status === 304 || res.status === 412 || res.status === 404) await drop(res);
      if (res.status === 304) return "not-modified";
      if (res.status === 412) return "changed";
      if (res.status === 404) return null;
      if ((res.status !== 200 && res.status !== 206) || !res.body) {
        await drop(res);
        throw answered(where, res.status);
      }
      const span = res.status === 206 ? contentRange(res.headers.get("content-range")) : undefined;
      return { info: infoOf(key, res.headers), range: span && { start: span.start, end: span.end }, body: res.body };
    },

    async put(key, body, info, opts = {}) {
      const headers: Record<string, string> = {};
      if (info.contentType) headers["content-type"] = info.contentType;
      if (info.cacheControl) headers["cache-control"] = info.cacheControl;
      // Header values are ASCII: metadata values are sent percent-encoded, and decoded on read.
      for (const [name, value] of Object.entries(info.meta)) headers[`${META}${name.toLowerCase()}`] = encodeURIComponent(value);
      // A stream goes as chunked transfer (Swift takes up to 5 GiB that way), so nothing is buffered here.
      const res = await call("PUT", objectPath(key), { headers, body, signal: opts.signal });
      await drop(res);
      if (res.status !== 201 && res.status !== 200) throw answered(where, res.status);
      return { etag: res.headers.get("etag") ?? undefined };
    },

    async delete(key, opts = {}) {
      const res = await call("DELETE", objectPath(key), { signal: opts.signal });
      await drop(res);
      if (!res.ok && res.status !== 404) throw answered(where, res.status);
    },

    async list(prefix, cursor, opts = {}) {
      const limit = Math.min(opts.limit ?? 1000, MAX_PAGE);
      const query = new URLSearchParams({ format: "json", limit: String(limit) });
      if (prefix) query.set("prefix", prefix);
      if (cursor) query.set("marker", cursor);
      const res = await call("GET", "", { query, signal: opts.signal, headers: { accept: "application/json" } });
      if (res.status === 204) {
        await drop(res);
        return { objects: [], next: null };
      }
      if (!res.ok) {
        await drop(res);
        throw answered(where, res.status);
      }
      let rows: ListingRow[];
      try {
        rows = JSON.parse(await smallText(res, where)) as ListingRow[];
      } catch (err) {
        if (err instanceof OriginError) throw err;
        throw new OriginError(`origin ${where} sent a listing that is not JSON`);
      }
      if (!Array.isArray(rows)) throw new OriginError(`origin ${where} sent a listing that is not a JSON array`);
      const objects = rows
        .filter((r) => typeof r.name === "string")
        .map((r) => ({ key: r.name!, size: r.bytes, etag: r.hash, lastModified: Date.parse(`${r.last_modified}Z`) || undefined, contentType: r.content_type, meta: {} }));
      // A full page may have more after it: its last name is the next marker. A short one is the end.
      const last = rows.at(-1);
      return { objects, next: rows.length >= limit && last ? (last.name ?? last.subdir ?? null) : null };
    },
  };
}
