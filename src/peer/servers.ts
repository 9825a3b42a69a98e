// The peer's two HTTP servers (native and S3) as one part. They listen when started,
// before the rest of the peer is: until `ready()` every route answers 503 in its API's
// format. Both share one set of client limits.
import { advertisedUrl } from "../api/advertise.ts";
import { ClientLimits } from "../api/client-limits.ts";
import { errorResponse, slowDownResponse } from "../api/errors.ts";
import { serveHttp, type HttpServer, type ServeOptions } from "../api/http-server.ts";
import { splitUrl } from "../api/s3/sigv4.ts";
import { s3ErrorFormat, xmlError } from "../api/s3/xml.ts";
import { startingResponse } from "../api/starting.ts";
import type { PeerConfig } from "../config.ts";
import { SlowDownError } from "../errors.ts";
import type { Startable } from "../util/lifecycle.ts";
import type { Logger } from "../util/log.ts";

type Handler = (request: Request) => Response | Promise<Response>;

/** The native and S3 servers. */
export interface ApiServers extends Startable {
  /** The native API's advertised URL (once started). */
  readonly httpUrl: string;
  /** The S3 API's advertised URL (once started). */
  readonly s3Url: string;
  /** Hand requests to the APIs from now on (the peer is fully started). */
  ready(): void;
}

/** What the servers serve. */
export interface ApiServersDeps {
  config: PeerConfig;
  limits: ClientLimits;
  native: Handler;
  s3: Handler;
  /** This peer's p2p addresses (a wildcard listen address is advertised as one of their hosts). */
  multiaddrs(): string[];
  log: Logger;
}

/** Create the servers part. */
export function createApiServers({ config, limits, native, s3, multiaddrs, log }: ApiServersDeps): ApiServers {
  let isReady = false;
  let servers: HttpServer[] = [];
  let httpUrl = "";
  let s3Url = "";
  const serveOptions = (refuse: (err: SlowDownError, request: Request) => Response): ServeOptions => ({
    admit: (request, ip) => {
      const verdict = limits.admit(request, ip);
      return verdict instanceof SlowDownError ? refuse(verdict, request) : verdict;
    },
    idleMs: config.limits.bodyIdleMs,
    onBodyTimeout: () => limits.bodyTimedOut(),
  });
  const refuseS3 = (err: SlowDownError, request: Request) => xmlError(503, err.code, err.message, splitUrl(request.url).rawPath, crypto.randomUUID(), err.retryAfterSeconds);

  return {
    get httpUrl() {
      return httpUrl;
    },
    get s3Url() {
      return s3Url;
    },
    ready: () => void (isReady = true),
    async start() {
      const nativeServer = await serveHttp((r) => (isReady ? native(r) : startingResponse("native")), config.http, log.child("http"), errorResponse, serveOptions(slowDownResponse));
      servers.push(nativeServer);
      const s3Server = await serveHttp((r) => (isReady ? s3(r) : startingResponse("s3")), config.s3, log.child("s3"), s3ErrorFormat, serveOptions(refuseS3));
      servers.push(s3Server);
      httpUrl = advertisedUrl(config.advertiseHttp, config.http.host, nativeServer.port, multiaddrs());
      s3Url = advertisedUrl(config.advertiseS3, config.s3.host, s3Server.port, multiaddrs());
    },
    async stop(abrupt) {
      const stopping = servers.reverse();
      servers = [];
      await Promise.all(stopping.map((s) => s.stop(abrupt)));
    },
  };
}
