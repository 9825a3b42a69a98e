// Raw HTTP/1.1 over node:net for the fuzz suite: fetch would normalise (or refuse) the
// malformed requests the fuzzer is after, so requests are written byte for byte and the
// answer is read until the server closes. A reply is judged only by what arrived: a
// status line or not, and whether the connection was reset.
import net from "node:net";
import crypto from "node:crypto";
import { suiteLeaks } from "../harness/leak-check.ts";
import { signer, type Creds } from "../harness/s3.ts";

/** One raw request: the bytes of its head (request line + headers, no blank line) and body. */
export interface WireRequest {
  head: string;
  body: Uint8Array;
  /** Send FIN after the body (a client that declared more than it sent). */
  halfClose?: boolean;
}

/** What came back. */
export interface WireReply {
  /** Status of the first response line; undefined if none arrived. */
  status?: number;
  headers: Map<string, string>;
  /** Everything after the first blank line (raw, possibly chunked). */
  body: Buffer;
  /** The connection was reset (ECONNRESET/EPIPE) rather than closed. */
  reset: boolean;
  /** No close within the wait. */
  timedOut: boolean;
}

/** `all` without leading interim (1xx) responses such as 100 Continue. */
function finalResponse(all: Buffer): Buffer {
  while (/^HTTP\/1\.[01] 1\d\d /.test(all.subarray(0, 13).toString("latin1"))) {
    const end = all.indexOf("\r\n\r\n");
    if (end < 0) break;
    all = all.subarray(end + 4);
  }
  return all;
}

/** True once `all` holds one whole response (by its Content-Length or chunked framing). */
function complete(all: Buffer, head: boolean): boolean {
  const end = all.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const headText = all.subarray(0, end).toString("latin1");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headText)?.[1]);
  if (head || status === 204 || status === 304 || (status >= 100 && status < 200)) return true;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(headText);
  if (length) return all.length - end - 4 >= Number(length[1]);
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(headText)) return all.subarray(all.length - 5).toString("latin1") === "0\r\n\r\n";
  return false;
}

/** Send `req` to 127.0.0.1:`port` and collect the answer until it is whole, the server closes, or `waitMs` passes. */
export function sendWire(port: number, req: WireRequest, waitMs = 15_000): Promise<WireReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let reset = false;
    let done = false;
    const finish = (timedOut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const all = finalResponse(Buffer.concat(chunks));
      const end = all.indexOf("\r\n\r\n");
      const headText = all.subarray(0, end < 0 ? all.length : end).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(headText);
      const headers = new Map<string, string>();
      for (const line of headText.split("\r\n").slice(1)) {
        const c = line.indexOf(":");
        if (c > 0) headers.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
      }
      const body = end < 0 ? Buffer.alloc(0) : all.subarray(end + 4);
      // A fuzzed POST /admin/keys that made a key: its secret joins the suite's secret check.
      if (m?.[1] === "201" && body.length < 64 * 1024) suiteLeaks.registerFromJson(body.toString("utf8"));
      resolve({ status: m ? Number(m[1]) : undefined, headers, body, reset, timedOut });
    };
    const timer = setTimeout(() => finish(true), waitMs);
    const sock = net.connect({ host: "127.0.0.1", port }, () => {
      sock.write(req.head + "\r\n\r\n");
      sock.write(req.body, (err) => {
        if (!err && req.halfClose) sock.end();
      });
    });
    const head = req.head.startsWith("HEAD ");
    let size = 0;
    sock.on("data", (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size < 1 << 20 && complete(finalResponse(Buffer.concat(chunks)), head)) finish(false);
    });
    sock.on("end", () => finish(false));
    sock.on("close", () => finish(false));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") reset = true;
      finish(false);
    });
  });
}

/** The body of a reply, with chunked framing undone when the head says so. */
export function replyText(r: WireReply): string {
  if (!/chunked/i.test(r.headers.get("transfer-encoding") ?? "")) return r.body.toString("utf8");
  let rest = r.body;
  const out: Buffer[] = [];
  for (;;) {
    const nl = rest.indexOf("\r\n");
    const size = parseInt(rest.subarray(0, nl).toString("latin1"), 16);
    if (!(size > 0)) break;
    out.push(rest.subarray(nl + 2, nl + 2 + size));
    rest = rest.subarray(nl + 2 + size + 2);
  }
  return Buffer.concat(out).toString("utf8");
}

/** Decode a raw query the way a signer sees it (an invalid escape is kept as written). */
function queryObject(rawQuery: string): Record<string, string> {
  const dec = (x: string) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  };
  const query: Record<string, string> = {};
  for (const part of rawQuery.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    query[dec(eq < 0 ? part : part.slice(0, eq))] = dec(eq < 0 ? "" : part.slice(eq + 1));
  }
  return query;
}

/** The headers of a SigV4-signed request (host, x-amz-date, x-amz-content-sha256, authorization and `headers`). */
export async function signHeaders(
  port: number,
  init: { method: string; path: string; rawQuery?: string; headers?: Record<string, string>; body?: Uint8Array; creds?: Creds; payloadHash?: string },
): Promise<Record<string, string>> {
  const body = init.body ?? new Uint8Array(0);
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`,
    "x-amz-content-sha256": init.payloadHash ?? crypto.createHash("sha256").update(body).digest("hex"),
    ...init.headers,
  };
  const query = queryObject(init.rawQuery ?? "");
  const signed = await signer(init.creds).sign({ method: init.method, protocol: "http:", hostname: "127.0.0.1", port, path: init.path, query, headers, body }, { signingDate: new Date() });
  return signed.headers as Record<string, string>;
}

/** A SigV4-signed raw request: `path` and `rawQuery` go on the wire exactly as given (and are signed as given). */
export async function signedWire(
  port: number,
  init: { method: string; path: string; rawQuery?: string; headers?: Record<string, string>; body?: Uint8Array; creds?: Creds; payloadHash?: string },
): Promise<WireRequest> {
  const body = init.body ?? new Uint8Array(0);
  const lines = [`${init.method} ${init.path}${init.rawQuery ? `?${init.rawQuery}` : ""} HTTP/1.1`];
  for (const [k, v] of Object.entries(await signHeaders(port, init))) lines.push(`${k}: ${v}`);
  lines.push(`content-length: ${body.byteLength}`, "connection: close");
  return { head: lines.join("\r\n"), body };
}

/** The error code and message of a native JSON or S3 XML error body, or undefined if it is neither. */
export function errorCodeOf(r: WireReply): { code: string; message: string } | undefined {
  const text = replyText(r);
  const xml = /<Error>[\s\S]*?<Code>([^<]+)<\/Code>[\s\S]*?<Message>([^<]+)<\/Message>/.exec(text);
  if (xml) return { code: xml[1], message: xml[2] };
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof e?.code === "string" && typeof e.message === "string" && e.code && e.message) return { code: e.code, message: e.message };
  } catch {
    // not JSON
  }
  return undefined;
}

/** The port of a base URL such as http://127.0.0.1:1234. */
export function portOf(base: string): number {
  return Number(new URL(base).port);
}
