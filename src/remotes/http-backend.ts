// A plain HTTP origin (a web server, a CDN's origin): read-only, with `fetch`. Keys map to
// paths under the endpoint (each "/"-separated piece percent-encoded); freshness and
// validators come from the origin's headers as they are.
import { OriginError, type ByteSpan, type GetOptions, type RemoteBackend, type RemoteObjectInfo } from "./backend.ts";
import { deadline, pathSafeKey } from "./remote-call.ts";

/** Where an HTTP origin is. */
export interface HttpRemoteSpec {
  /** `http://host[:port][/base]`. */
  endpoint: string;
  /** Before each key in the path. */
  prefix?: string;
  /** Longest wait for the origin's response headers (the body then streams at its pace). */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const META_PREFIX = "x-meta-";

/** The object's info from a response's headers; `size` from Content-Range's total when ranged. */
function infoOf(key: string, h: Headers): RemoteObjectInfo {
  const total = /\/(\d+)$/.exec(h.get("content-range") ?? "")?.[1];
  const lastModified = Date.parse(h.get("last-modified") ?? "");
  const meta: Record<string, string> = {};
  for (const [name, value] of h) if (name.startsWith(META_PREFIX)) meta[name.slice(META_PREFIX.length)] = value;
  return {
    key,
    size: Number(total ?? h.get("content-length") ?? 0),
    etag: h.get("etag") ?? undefined,
    lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
    contentType: h.get("content-type") ?? undefined,
    meta,
    cacheControl: h.get("cache-control") ?? undefined,
    expires: h.get("expires") ?? undefined,
  };
}

/** The span a 206 answered, from Content-Range. */
function spanOf(h: Headers): ByteSpan | undefined {
  const m = /^bytes (\d+)-(\d+)\//.exec(h.get("content-range") ?? "");
  return m ? { start: Number(m[1]), end: Number(m[2]) } : undefined;
}

/** A read-only backend for an HTTP origin. */
export function createHttpBackend(spec: HttpRemoteSpec): RemoteBackend {
  const base = new URL(spec.endpoint);
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new OriginError(`an http remote's endpoint is an http(s) URL, not ${base.protocol}`);
  // Errors name the host only: an endpoint may carry credentials in its user part.
  const where = base.host;
  const root = spec.endpoint.replace(/\/+$/, "");
  // A "." or ".." segment would be folded by fetch into another key's path: refused (pathSafeKey).
  const pathOf = (key: string) => `${root}/${pathSafeKey(`${spec.prefix ?? ""}${key}`).split("/").map(encodeURIComponent).join("/")}`;
  const timeoutMs = spec.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function call(method: "GET" | "HEAD", key: string, headers: Record<string, string>, signal?: AbortSignal): Promise<Response> {
    const url = pathOf(key);
    // The deadline stops at the response's head: the body then streams at its own pace (a
    // plain AbortSignal.timeout would also cut a long body off mid-stream).
    const d = deadline(timeoutMs, signal);
    try {
      return await fetch(url, { method, headers, redirect: "follow", signal: d.signal });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new OriginError(d.timedOut() ? `origin ${where} did not answer within ${timeoutMs} ms` : `origin ${where} could not be reached: ${(err as Error).message}`);
    } finally {
      d.settle();
    }
  }

  const failed = (res: Response) => new OriginError(`origin ${where} answered ${res.status}`);
  const absent = (status: number) => status === 404 || status === 410;

  return {
    type: "http",
    capabilities: { write: false, list: false },

    async head(key, opts = {}) {
      const res = await call("HEAD", key, {}, opts.signal);
      if (absent(res.status)) return null;
      if (!res.ok) throw failed(res);
      return infoOf(key, res.headers);
    },

    async get(key, opts: GetOptions = {}) {
      const headers: Record<string, string> = {};
      if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end}`;
      if (opts.ifMatch) headers["if-match"] = opts.ifMatch;
      if (opts.ifNoneMatch) headers["if-none-match"] = opts.ifNoneMatch;
      const res = await call("GET", key, headers, opts.signal);
      if (res.status === 304) return "not-modified";
      if (res.status === 412) return "changed";
      if (absent(res.status)) {
        await res.body?.cancel();
        return null;
      }
      if ((res.status !== 200 && res.status !== 206) || !res.body) {
        await res.body?.cancel();
        throw failed(res);
      }
      // An origin that ignores Range answers 200 with the whole object: no range then.
      return { info: infoOf(key, res.headers), range: res.status === 206 ? spanOf(res.headers) : undefined, body: res.body };
    },
  };
}
