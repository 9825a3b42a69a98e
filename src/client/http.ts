// Calls to one peer's native API with its bearer token. Every failure becomes a
// ClientError: the peer's {error: {code, message}}, or "cannot reach the peer at URL".
import type { Alias } from "./config.ts";
import { ClientError } from "./errors.ts";
import { connectionCause } from "../cli/admin-client.ts";

/** Options of one call. */
export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: RequestInit["body"];
  /** Statuses that are answers, not errors (e.g. 404 for a HEAD that may miss). */
  accept?: number[];
  signal?: AbortSignal;
}

/** A peer as the client talks to it. */
export interface Peer {
  readonly url: string;
  /** One raw call; the response is checked (an error status throws) but its body is not read. */
  request(route: string, opts?: CallOptions): Promise<Response>;
  /** A call answered with JSON. */
  json<T>(route: string, opts?: CallOptions): Promise<T>;
}

/**
 * Encode an object key for a path: each byte that needs it, '/' kept (the API reads the raw
 * path). A URL's '.' and '..' segments (even percent-encoded) are resolved before the
 * request leaves, so a key holding one would name another object: such a key is refused.
 */
export function keyPath(key: string): string {
  const segments = key.split("/");
  if (segments.some((s) => s === "." || s === "..")) throw new ClientError(`the key "${key}" has a '.' or '..' segment, which an HTTP path cannot carry: use an S3 tool for it`, "UnsafeKey");
  return segments.map(encodeURIComponent).join("/");
}

/** The route of an object. */
export const objectRoute = (bucket: string, key: string) => `/buckets/${encodeURIComponent(bucket)}/objects/${keyPath(key)}`;

/** The route of a multipart upload (the key rides in the query). */
export const multipartRoute = (bucket: string, key: string, rest = "") => `/buckets/${encodeURIComponent(bucket)}/multipart${rest}?key=${encodeURIComponent(key)}`;

/** The error a failed response carries. */
async function errorOf(res: Response, what: string): Promise<ClientError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code) return new ClientError(`${what}: ${body.error.code}: ${body.error.message ?? ""}`.trim(), body.error.code, res.status);
  } catch {
    // not JSON: fall through
  }
  const code = res.status === 404 ? "NotFound" : `HTTP${res.status}`;
  return new ClientError(`${what}: ${res.status} ${res.statusText}${text ? ` ${text.slice(0, 200)}` : ""}`, code, res.status);
}

/** A peer client for an alias (or a bare URL with an optional token). */
export function peerOf(alias: Pick<Alias, "url" | "token">): Peer {
  const base = alias.url;
  const request = async (route: string, opts: CallOptions = {}): Promise<Response> => {
    const method = opts.method ?? "GET";
    const headers: Record<string, string> = { ...opts.headers };
    if (alias.token) headers.authorization = `Bearer ${alias.token}`;
    let res: Response;
    try {
      res = await fetch(base + route, { method, headers, body: opts.body, signal: opts.signal, redirect: "manual" });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      throw new ClientError(`cannot reach the peer at ${base}: ${connectionCause(err)}`, "ConnectionFailed");
    }
    if (res.ok || opts.accept?.includes(res.status)) return res;
    throw await errorOf(res, `${method} ${route.split("?")[0]}`);
  };
  return {
    url: base,
    request,
    async json<T>(route: string, opts?: CallOptions): Promise<T> {
      return (await (await request(route, opts)).json()) as T;
    },
  };
}
