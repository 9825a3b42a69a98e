// A faithful fake of the OpenStack Swift REST endpoints the swift adapter uses (Debian's swift
// packages need a ring, rsync, memcached and several daemons: too heavy to start in CI):
// v1 auth (GET /auth/v1.0 with X-Auth-User and X-Auth-Key answering X-Storage-Url and
// X-Auth-Token; a token can be revoked to test renewal), and under /v1/AUTH_<user>/<container>:
// object HEAD, GET (Range, If-Match, If-None-Match, 206/304/412/416), PUT (X-Object-Meta-*,
// chunked bodies, 201 with the MD5 ETag unquoted as Swift sends it), DELETE (204, 404), and the
// container's listing (prefix, marker, limit, sorted by name; JSON rows for format=json, 200
// with [] when empty, as Swift answers; plain names otherwise, 204 when empty).
import { createHash, randomUUID } from "node:crypto";

/** One stored object. */
interface SwiftObject {
  body: Uint8Array;
  etag: string;
  contentType: string;
  meta: Record<string, string>;
  lastModified: Date;
}

/** A running fake Swift. */
export interface FakeSwift {
  /** The v1 auth URL. */
  authUrl: string;
  /** The storage URL a token is for. */
  storageUrl: string;
  /** Requests seen, by method. */
  requests: Map<string, number>;
  /** Forget every token (the next call answers 401). */
  revokeTokens(): void;
  /** Answer the next `n` object PUTs with 500 (Infinity: every PUT until set again; 0: none). */
  failPuts(n: number): void;
  /** An object as stored (for checks), or undefined. */
  stored(container: string, name: string): { body: Uint8Array; contentType: string; meta: Record<string, string> } | undefined;
  /** The names in a container. */
  names(container: string): string[];
  stop(): void;
}

const META = "x-object-meta-";

/** Start a fake Swift with one account (`user`, `key`) and the given containers. */
export function startFakeSwift(user: string, key: string, containers: string[]): FakeSwift {
  const account = `AUTH_${user.replace(/\W/g, "")}`;
  const store = new Map<string, Map<string, SwiftObject>>(containers.map((c) => [c, new Map()]));
  const tokens = new Set<string>();
  const requests = new Map<string, number>();
  let putsToFail = 0;

  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      requests.set(req.method, (requests.get(req.method) ?? 0) + 1);
      if (url.pathname === "/auth/v1.0") {
        if (req.headers.get("x-auth-user") !== user || req.headers.get("x-auth-key") !== key) return new Response("Unauthorized", { status: 401 });
        const token = `AUTH_tk${randomUUID().replace(/-/g, "")}`;
        tokens.add(token);
        return new Response(null, { status: 200, headers: { "x-storage-url": `${url.origin}/v1/${account}`, "x-auth-token": token, "x-storage-token": token } });
      }
      const m = /^\/v1\/([^/]+)\/([^/]+)(?:\/(.+))?$/.exec(url.pathname);
      if (!m || m[1] !== account) return new Response("Not Found", { status: 404 });
      if (!tokens.has(req.headers.get("x-auth-token") ?? "")) return new Response("Unauthorized", { status: 401 });
      const objects = store.get(decodeURIComponent(m[2]!));
      if (!objects) return new Response("Not Found", { status: 404 });
      if (m[3] === undefined) return listing(objects, url, req.method);
      return object(objects, decodeURIComponent(m[3]), req);
    },
  });

  /** GET on a container: names (or JSON rows) after `marker`, with `prefix`, up to `limit`. */
  function listing(objects: Map<string, SwiftObject>, url: URL, method: string): Response {
    if (method !== "GET") return new Response("Method Not Allowed", { status: 405 });
    const prefix = url.searchParams.get("prefix") ?? "";
    const marker = url.searchParams.get("marker") ?? "";
    const limit = Math.min(Number(url.searchParams.get("limit") ?? 10_000), 10_000);
    const names = [...objects.keys()]
      .filter((n) => n.startsWith(prefix) && n > marker)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .slice(0, limit);
    const rows = names.map((name) => {
      const o = objects.get(name)!;
      return { name, bytes: o.body.byteLength, hash: o.etag, last_modified: o.lastModified.toISOString().replace("Z", ""), content_type: o.contentType };
    });
    if (url.searchParams.get("format") !== "json") return new Response(names.length ? `${names.join("\n")}\n` : null, { status: names.length ? 200 : 204 });
    return Response.json(rows);
  }

  /** One object's headers. */
  function headersOf(o: SwiftObject): Record<string, string> {
    const h: Record<string, string> = { etag: o.etag, "content-type": o.contentType, "last-modified": o.lastModified.toUTCString(), "accept-ranges": "bytes" };
    for (const [k, v] of Object.entries(o.meta)) h[`${META}${k}`] = v;
    return h;
  }

  /** HEAD, GET, PUT or DELETE on one object. */
  async function object(objects: Map<string, SwiftObject>, name: string, req: Request): Promise<Response> {
    const o = objects.get(name);
    switch (req.method) {
      case "PUT": {
        if (putsToFail > 0) {
          putsToFail--;
          await req.arrayBuffer().catch(() => undefined);
          return new Response("injected failure", { status: 500 });
        }
        const body = new Uint8Array(await req.arrayBuffer());
        const meta: Record<string, string> = {};
        for (const [k, v] of req.headers) if (k.startsWith(META)) meta[k.slice(META.length)] = v;
        // Swift keeps one-second resolution in Last-Modified.
        const stored: SwiftObject = { body, etag: createHash("md5").update(body).digest("hex"), contentType: req.headers.get("content-type") ?? "application/octet-stream", meta, lastModified: new Date(Math.floor(Date.now() / 1000) * 1000) };
        objects.set(name, stored);
        return new Response(null, { status: 201, headers: { etag: stored.etag } });
      }
      case "DELETE":
        if (!o) return new Response("Not Found", { status: 404 });
        objects.delete(name);
        return new Response(null, { status: 204 });
      case "HEAD":
      case "GET": {
        if (!o) return new Response("Not Found", { status: 404 });
        const headers = headersOf(o);
        const unquote = (v: string) => v.replace(/^"|"$/g, "");
        const ifMatch = req.headers.get("if-match");
        if (ifMatch && ifMatch !== "*" && unquote(ifMatch) !== o.etag) return new Response(null, { status: 412, headers });
        const ifNoneMatch = req.headers.get("if-none-match");
        if (ifNoneMatch && (ifNoneMatch === "*" || unquote(ifNoneMatch) === o.etag)) return new Response(null, { status: 304, headers });
        const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
        const size = o.body.byteLength;
        if (range && req.method === "GET") {
          const start = Number(range[1]);
          const end = Math.min(range[2] ? Number(range[2]) : size - 1, size - 1);
          if (start >= size) return new Response(null, { status: 416, headers: { ...headers, "content-range": `bytes */${size}` } });
          return new Response(o.body.slice(start, end + 1), { status: 206, headers: { ...headers, "content-range": `bytes ${start}-${end}/${size}` } });
        }
        if (req.method === "HEAD") return new Response(null, { status: 200, headers: { ...headers, "content-length": String(size) } });
        return new Response(o.body, { status: 200, headers });
      }
      default:
        return new Response("Method Not Allowed", { status: 405 });
    }
  }

  const base = `http://127.0.0.1:${server.port}`;
  return {
    authUrl: `${base}/auth/v1.0`,
    storageUrl: `${base}/v1/${account}`,
    requests,
    revokeTokens: () => tokens.clear(),
    failPuts: (n) => void (putsToFail = n),
    stored: (container, name) => store.get(container)?.get(name),
    names: (container) => [...(store.get(container)?.keys() ?? [])].sort(),
    stop: () => void server.stop(true),
  };
}
