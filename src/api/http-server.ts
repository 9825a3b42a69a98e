// Serving a fetch-style handler (our Elysia apps) over node:http. Bun.serve drops a
// handler's Content-Length whenever the body is a ReadableStream and sends it chunked
// (Bun issue 10507, open in 1.4.5), but object downloads stream and S3 clients need
// their length. Bun's node:http keeps the header and gives write backpressure, so the
// apps run there: requests become web Requests (raw path kept, body streamed) and
// responses are written piece by piece, waiting for `drain`.
import http from "node:http";
import type net from "node:net";
import type { Duplex } from "node:stream";
import type { HostPort } from "../config.ts";
import { BadRequestError, MeshError, RequestTimeoutError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import type { Api } from "../errors.ts";
import type { ApiErrors } from "./errors.ts";
import { requestIdOf } from "./request-id.ts";
import { requestTarget } from "./request-target.ts";
import { httpListenError } from "../net/listen-errors.ts";

/** A listening HTTP server. */
export interface HttpServer {
  readonly port: number;
  /**
   * Stop listening, give the requests in flight up to `graceMs` to finish, then cut off the
   * rest, logging one line for each (0: cut off at once, without those lines).
   */
  stop(graceMs?: number): Promise<void>;
}

type Handler = (request: Request) => Response | Promise<Response>;

/** Limits on what a client may hold (client-limits.ts decides; the server enforces). */
export interface ServeOptions {
  /** Called as each request arrives: an error refuses it; a function admits it and runs once the exchange is over. */
  admit?(request: Request, clientIp: string): MeshError | (() => void);
  /** A body that sends nothing this long fails with RequestTimeoutError; a response not read for this long is dropped. */
  idleMs?: number;
  /** A body timed out. */
  onBodyTimeout?(): void;
  /**
   * Called as each request arrives (metrics, the access log); the function it returns is
   * called once when the exchange is over: answered, or the client went away.
   */
  observe?(api: Api, request: Request): ((outcome: ExchangeOutcome) => void) | undefined;
  /** The flag that sets this server's address, named when it cannot listen (default --http). */
  flag?: string;
}

/** How an exchange ended. */
export interface ExchangeOutcome {
  /** The status sent; 499 if the client went away before any answer was sent. */
  status: number;
  durationMs: number;
  /** Request body bytes read. */
  bytesIn: number;
  /** Response body bytes written. */
  bytesOut: number;
}

/** An exchange in flight: what a stop that cuts it off says about it. */
interface InFlight {
  method: string;
  /** The path without its query (a presigned URL's query holds its signature). */
  path: string;
  tally: Tally;
}

/** The path of a request target, without the query, at most 200 characters. */
function pathOnly(url: string | undefined): string {
  const path = (url ?? "/").split("?")[0];
  return path.length > 200 ? path.slice(0, 200) + "..." : path;
}

/** Body bytes of one exchange, each way. */
interface Tally {
  in: number;
  out: number;
}

/** What a request whose target or Host is refused is built on (only its body is read, to drop it). */
const BAD_TARGET_URL = "http://localhost/";

/** A refused request's unread body is read and dropped before the answer if it is at most this big... */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** ...and arrives within this long; otherwise the answer goes first and the connection is dropped a moment later. */
const DRAIN_MS = 5000;
/** How long the rest of a body too big or too slow to wait for is still read and dropped after the answer. */
const LINGER_MS = 2000;

/**
 * The web Request for a node:http request, and `drain`, which reads and drops whatever of
 * its body the handler left unread. An answer given before the whole body arrived (a
 * refusal, usually) must not leave the rest on the connection: the client's next request
 * on it would wait behind it (seen as 6 s stalls under keep-alive). Nor may the connection
 * close with bytes still arriving: that resets it, and the reset can destroy the answer
 * before the client reads it (seen as replies with no status line under Bun's node:http,
 * which also resets when a `Connection: close` answer ends with the body still arriving).
 */
function toRequest(req: http.IncomingMessage, res: http.ServerResponse, url: string, signal: AbortSignal, opts: ServeOptions, tally: Tally): { request: Request; drain(): Promise<boolean> } {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  /**
   * `Expect: 100-continue`: the client waits for the 100 before it sends the body. The 100
   * goes out when the handler first reads the body, so only after it has authenticated and
   * checked the request: a refusal is the final answer, and the body is never sent for it.
   */
  // (From the Headers just built: Bun's req.headers materialises a second object per request.)
  let awaitingContinue = hasBody && (headers.get("expect") ?? "").trim().toLowerCase() === "100-continue";
  let body: ReadableStream<Uint8Array> | undefined;
  /**
   * Resolves when the answer may go out: the rest of the body is read, or is left to
   * `linger`; false when the connection cannot carry another request (a stalled body).
   */
  let drain = async () => true;
  if (hasBody) {
    const pieces = req[Symbol.asyncIterator]();
    let discarding: Promise<void> | undefined;
    let drained: Promise<boolean> | undefined;
    /** The client stalled mid-body: waiting for the rest would only stall again. */
    let abandoned = false;
    const discard = () =>
      (discarding ??= (async () => {
        try {
          while (!(await pieces.next()).done);
        } catch {
          // the client went away: nothing left to drop
        }
      })());
    drain = () =>
      (drained ??= (async () => {
        if (req.complete || req.destroyed) return true;
        // The client was never told to send the body: it may never come. Answer at once and
        // close the connection, dropping whatever it sends anyway for a moment (RFC 9110 15.2.1).
        if (awaitingContinue) {
          linger(req);
          return false;
        }
        if (abandoned) {
          linger(req);
          return false;
        }
        const done = discard();
        if (Number(req.headers["content-length"] ?? 0) <= DRAIN_MAX_BYTES) {
          let timer: Timer | undefined;
          await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, DRAIN_MS)))]);
          clearTimeout(timer);
        }
        if (!req.complete) linger(req);
        return true;
      })());
    const idleMs = opts.idleMs ?? 0;
    body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (awaitingContinue) {
          awaitingContinue = false;
          if (!res.headersSent) res.writeContinue();
        }
        // Only time spent waiting for the client counts: a handler busy elsewhere is not pulling.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stalled = new Promise<"stalled">((resolve) => {
          if (idleMs > 0) timer = setTimeout(() => resolve("stalled"), idleMs);
        });
        let next: IteratorResult<unknown> | "stalled";
        try {
          next = await Promise.race([pieces.next(), stalled]);
        } catch {
          // The client went away mid-body ("aborted"): a client error, not a failure of ours.
          controller.error(new BadRequestError("the connection ended before the whole body arrived", "IncompleteBody"));
          return;
        } finally {
          clearTimeout(timer);
        }
        if (next === "stalled") {
          opts.onBodyTimeout?.();
          abandoned = true;
          controller.error(new RequestTimeoutError(`no part of the request body arrived for ${idleMs / 1000} s; the upload was abandoned`));
          return;
        }
        if (next.done) controller.close();
        else {
          tally.in += (next.value as Uint8Array).byteLength;
          controller.enqueue(next.value as Uint8Array);
        }
      },
      // A handler that gives up on the body (a failed upload) still owes the client an
      // answer on this connection: drop the rest rather than reset it.
      cancel() {
        void drain();
      },
      // A stream pulls once as it is made, to fill its queue: a body awaiting its 100 must
      // not, or the 100 would go out before the handler has looked at the request.
    }, { highWaterMark: awaitingContinue ? 0 : 1 });
  }
  // `url` keeps the raw request target: keys with `//` or `%2F` reach the router as sent.
  return { request: new Request(url, { method: req.method, headers, body, signal, duplex: "half" } as RequestInit), drain };
}

/** Keep dropping a body that is still arriving for a moment after the answer, then drop the connection. */
function linger(req: http.IncomingMessage): void {
  const timer = setTimeout(() => req.socket.destroy(), LINGER_MS);
  timer.unref();
  req.once("end", () => clearTimeout(timer));
}

async function writeResponse(res: http.ServerResponse, response: Response, keepAlive: boolean, idleMs: number, tally: Tally): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  });
  if (!keepAlive) headers.connection = "close";
  res.writeHead(response.status, headers);
  if (!response.body) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  const closed = new Promise<void>((resolve) => res.once("close", resolve));
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (res.destroyed) throw new Error("client went away");
      tally.out += value.byteLength;
      if (!res.write(value)) {
        // A client that stops reading holds a chunk of memory and a slot in flight: not forever.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const stalled = new Promise<"stalled">((r) => {
          if (idleMs > 0) timer = setTimeout(() => r("stalled"), idleMs);
        });
        const outcome = await Promise.race([new Promise((r) => res.once("drain", r)), closed, stalled]);
        clearTimeout(timer);
        if (outcome === "stalled") throw new Error("the client stopped reading the response");
      }
    }
    res.end();
  } catch (err) {
    void reader.cancel(err).catch(() => {});
    res.destroy();
  }
}

/** Write `response` (a small error) straight on a socket node:http no longer serves, and close it. */
async function answerOnSocket(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const head = [`HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`];
  response.headers.forEach((value, name) => head.push(`${name}: ${value}`));
  head.push(`content-length: ${body.byteLength}`, "connection: close");
  if (!socket.writable) return void socket.destroy();
  socket.end(Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n"), body]));
  // node:http no longer reads this socket: drop what still arrives, and the socket itself a moment later.
  socket.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}

/** How long a client may take over a request's headers when no idle timeout is given. */
const DEFAULT_HEADERS_MS = 60_000;

/**
 * A deadline on each request's headers, from the connection (or the end of the previous
 * answer) to the last header line. Bun's node:http ignores `headersTimeout`, so a client
 * dribbling a header byte at a time (slowloris) would hold its connection forever. A first
 * request that is late gets a 408 and the connection closes; an idle kept-alive one just closes.
 */
function headerDeadlines(server: http.Server, ms: number, errors: ApiErrors) {
  const timers = new WeakMap<net.Socket, { arm(first: boolean): void; clear(): void }>();
  server.on("connection", (socket: net.Socket) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const clear = () => clearTimeout(timer);
    const arm = (first: boolean) => {
      clear();
      timer = setTimeout(() => {
        if (!first) return socket.destroy();
        // 408 on both APIs; S3 keeps its RequestTimeout code for a stalled body (a 400, as AWS sends it).
        const code = errors.api === "s3" ? "RequestHeaderTimeout" : "RequestTimeout";
        void answerOnSocket(socket, errors.respond(new MeshError(code, `the request headers did not arrive within ${ms / 1000} s`)));
      }, ms);
      timer.unref();
    };
    timers.set(socket, { arm, clear });
    socket.once("close", clear);
    arm(true);
  });
  return {
    /** Headers are in: no deadline while the request is served; the next one starts when the answer is sent. */
    started(req: http.IncomingMessage, res: http.ServerResponse) {
      const t = timers.get(req.socket);
      t?.clear();
      res.once("finish", () => t?.arm(false));
    },
  };
}

/** `response` with the request id header set (a handler's own Response may not carry it). */
function withRequestId(response: Response, request: Request, header: string): Response {
  if (response.headers.has(header)) return response;
  try {
    response.headers.set(header, requestIdOf(request));
    return response;
  } catch {
    // Immutable headers (a fetched Response): copy them.
    const copy = new Response(response.body, response);
    copy.headers.set(header, requestIdOf(request));
    return copy;
  }
}

/**
 * Listen on `hp` and serve `handler`. Every answer carries the request id; errors (a request
 * too malformed to reach the handler, a refusal, a handler that threw) are answered by the
 * API's one error function, `errors`.
 */
export async function serveHttp(handler: Handler, hp: HostPort, log: Logger, errors: ApiErrors, opts: ServeOptions = {}): Promise<HttpServer> {
  let deadlines: ReturnType<typeof headerDeadlines> | undefined;
  /** Exchanges not over yet, for the lines a stop logs about the ones it cuts off. */
  const inflight = new Set<InFlight>();
  /** Set while stopping: called as each exchange ends. */
  let onExchangeEnd: (() => void) | undefined;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    deadlines?.started(req, res);
    const aborter = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) aborter.abort();
    });
    const target = requestTarget(req.url, req.rawHeaders, req.httpVersion);
    const tally: Tally = { in: 0, out: 0 };
    const exchange: InFlight = { method: req.method ?? "?", path: pathOnly(req.url), tally };
    inflight.add(exchange);
    res.once("close", () => {
      inflight.delete(exchange);
      onExchangeEnd?.();
    });
    const { request, drain } = toRequest(req, res, target.url ?? BAD_TARGET_URL, aborter.signal, opts, tally);
    const began = performance.now();
    const observed = opts.observe?.(errors.api, request);
    if (observed) {
      res.once("close", () =>
        observed({ status: res.headersSent ? res.statusCode : 499, durationMs: performance.now() - began, bytesIn: tally.in, bytesOut: tally.out }),
      );
    }
    const send = async (response: Response) => writeResponse(res, withRequestId(response, request, errors.requestIdHeader), await drain(), opts.idleMs ?? 0, tally);
    Promise.resolve()
      .then(() => {
        if (target.problem !== undefined) throw new BadRequestError(target.problem);
        const admitted = opts.admit?.(request, req.socket.remoteAddress ?? "");
        if (admitted instanceof MeshError) throw admitted;
        if (admitted) res.once("close", admitted);
        return handler(request);
      })
      .catch((err: unknown) => errors.respond(err, request))
      .then(send)
      .catch((err: unknown) => {
        // The answer itself could not be written (a header value node:http refuses, say).
        if (res.headersSent) return void res.destroy();
        return send(errors.respond(err, request)).catch(() => res.destroy());
      });
  };
  const server = http.createServer({ requireHostHeader: false }, onRequest);
  // With a listener here node:http no longer sends "100 Continue" by itself as each such
  // request arrives (before anything is checked): toRequest sends it when the body is read.
  server.on("checkContinue", onRequest);
  // Malformed or cut-off requests the HTTP parser rejects still get an error in the API's format.
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Duplex) => {
    log.debug(`client error ${err.code}: ${err.message}`);
    if (!socket.writable) return socket.destroy();
    const cutOff = err.code === "HPE_INVALID_EOF_STATE";
    void answerOnSocket(socket, errors.respond(cutOff ? new BadRequestError("the connection ended before the whole body arrived", "IncompleteBody") : new BadRequestError(`malformed HTTP request (${err.code ?? err.message})`)));
  });
  // node:http hands CONNECT to this event and drops the connection if nothing listens.
  server.on("connect", (req: http.IncomingMessage, socket: Duplex) => {
    void answerOnSocket(socket, errors.respond(new MeshError("MethodNotAllowed", `${req.method} is not supported`)));
  });
  // Large objects take as long as they take; only slow headers and idle bodies are cut short.
  server.requestTimeout = 0;
  deadlines = headerDeadlines(server, opts.idleMs || DEFAULT_HEADERS_MS, errors);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(hp.port, hp.host, () => resolve());
  }).catch((err: unknown) => {
    throw httpListenError(err, `${hp.host}:${hp.port}`, opts.flag ?? "--http");
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : hp.port;
  return {
    port,
    stop: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        // A graceful stop lets transfers in progress finish, but not forever. The timer goes
        // as soon as the server has closed: pending, it would hold the whole peer in memory.
        const cutOff = () => {
          for (const x of inflight) {
            log.warn(`stopping: cut off ${x.method} ${x.path} after ${x.tally.in} bytes received, ${x.tally.out} bytes sent`);
          }
          inflight.clear();
          server.closeAllConnections();
        };
        const timer = graceMs > 0 ? setTimeout(cutOff, graceMs) : undefined;
        server.close(() => {
          clearTimeout(timer);
          onExchangeEnd = undefined;
          resolve();
        });
        if (graceMs <= 0) return server.closeAllConnections();
        // Kept-alive connections close as their last exchange ends.
        onExchangeEnd = () => (inflight.size === 0 ? server.closeAllConnections() : server.closeIdleConnections());
        onExchangeEnd();
      }),
  };
}
