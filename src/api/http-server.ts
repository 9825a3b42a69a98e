// Serving a fetch-style handler (our Elysia apps) over node:http. Bun.serve drops a
// handler's Content-Length whenever the body is a ReadableStream and sends it chunked
// (Bun issue 10507, open in 1.4.5), but object downloads stream and S3 clients need
// their length. Bun's node:http keeps the header and gives write backpressure, so the
// apps run there: requests become web Requests (raw path kept, body streamed) and
// responses are written piece by piece, waiting for `drain`.
import http from "node:http";
import type { HostPort } from "../config.ts";
import type { Logger } from "../util/log.ts";

/** A listening HTTP server. */
export interface HttpServer {
  readonly port: number;
  /** Stop listening; `force` also drops open connections. */
  stop(force?: boolean): Promise<void>;
}

type Handler = (request: Request) => Response | Promise<Response>;

function toRequest(req: http.IncomingMessage, origin: string, signal: AbortSignal): Request {
  const headers = new Headers();
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  let body: ReadableStream<Uint8Array> | undefined;
  if (hasBody) {
    const pieces = req[Symbol.asyncIterator]();
    body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await pieces.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value as Uint8Array);
      },
      cancel() {
        req.destroy();
      },
    });
  }
  // req.url is the raw request target: keys with `//` or `%2F` reach the router as sent.
  return new Request(origin + (req.url ?? "/"), { method: req.method, headers, body, signal, duplex: "half" } as RequestInit);
}

async function writeResponse(req: http.IncomingMessage, res: http.ServerResponse, response: Response): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    const prev = headers[name];
    headers[name] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  });
  // An answer given before the whole request body arrived (a refusal, usually) closes the
  // connection: the client's next request on it would otherwise wait behind the unread
  // rest of this body (seen as ~6 s stalls under Bun's keep-alive).
  if (!req.complete) headers.connection = "close";
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
      if (!res.write(value)) await Promise.race([new Promise((r) => res.once("drain", r)), closed]);
    }
    res.end();
  } catch (err) {
    void reader.cancel(err).catch(() => {});
    res.destroy();
  }
}

/** Listen on `hp` and serve `handler`. */
export async function serveHttp(handler: Handler, hp: HostPort, log: Logger): Promise<HttpServer> {
  const server = http.createServer((req, res) => {
    const aborter = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) aborter.abort();
    });
    const origin = `http://${req.headers.host ?? "localhost"}`;
    Promise.resolve()
      .then(() => handler(toRequest(req, origin, aborter.signal)))
      .then((response) => writeResponse(req, res, response))
      .catch((err) => {
        log.error(`http handler failed: ${(err as Error).message}`);
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: "InternalError", message: "internal error" } }));
        else res.destroy();
      });
  });
  // Malformed or cut-off requests the HTTP parser rejects still get our JSON error format.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    log.debug(`client error ${err.code}: ${err.message}`);
    if (!socket.writable) return socket.destroy();
    const cutOff = err.code === "HPE_INVALID_EOF_STATE";
    const body = JSON.stringify({ error: { code: cutOff ? "IncompleteBody" : "InvalidRequest", message: cutOff ? "the connection ended before the whole body arrived" : `malformed HTTP request (${err.code ?? err.message})` } });
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  // Large objects take as long as they take; only idle header reads are cut short.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(hp.port, hp.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : hp.port;
  return {
    port,
    stop: (force = false) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (force) server.closeAllConnections();
        else {
          server.closeIdleConnections();
          // A graceful stop lets transfers in progress finish, but not forever.
          setTimeout(() => server.closeAllConnections(), 5000).unref();
        }
      }),
  };
}
