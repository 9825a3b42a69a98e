// The peer's two HTTP servers (native and S3) as one part. They listen when started,
// before the rest of the peer is: until `ready()` every route answers 503 in its API's
// format. Both share one set of client limits.
import { advertisedUrl } from "../api/advertise.ts";
import { ClientLimits } from "../api/client-limits.ts";
import type { ApiErrors } from "../api/errors.ts";
import { serveHttp, type HttpServer, type ServeOptions } from "../api/http-server.ts";
import { startingResponse } from "../api/starting.ts";
import type { PeerConfig } from "../config.ts";
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
  /** Each API's one error function. */
  errors: { native: ApiErrors; s3: ApiErrors };
  /** This peer's p2p addresses (a wildcard listen address is advertised as one of their hosts). */
  multiaddrs(): string[];
  log: Logger;
  /** Each exchange, for metrics and the access log (ServeOptions.observe). */
  observe?: ServeOptions["observe"];
  /** Called as the servers begin to stop: ends answers that would never end by themselves (event streams). */
  beforeStop?(): void;
}

/** Create the servers part. */
export function createApiServers({ config, limits, native, s3, errors, multiaddrs, log, observe, beforeStop }: ApiServersDeps): ApiServers {
  let isReady = false;
  let servers: HttpServer[] = [];
  let stopping: Promise<void> | undefined;
  let httpUrl = "";
  let s3Url = "";
  const serveOptions: ServeOptions = { admit: (request, ip) => limits.admit(request, ip), idleMs: config.limits.bodyIdleMs, onBodyTimeout: () => limits.bodyTimedOut(), observe };

  return {
    get httpUrl() {
      return httpUrl;
    },
    get s3Url() {
      return s3Url;
    },
    ready: () => void (isReady = true),
    async start() {
      const nativeServer = await serveHttp((r) => (isReady ? native(r) : startingResponse(errors.native, r)), config.http, log.child("http"), errors.native, serveOptions);
      servers.push(nativeServer);
      // A part whose start fails is not stopped by the Lifecycle: close the native server here.
      const s3Server = await serveHttp((r) => (isReady ? s3(r) : startingResponse(errors.s3, r)), config.s3, log.child("s3"), errors.s3, { ...serveOptions, flag: "--s3" }).catch(async (err: unknown) => {
        await nativeServer.stop(0);
        servers = [];
        throw err;
      });
      servers.push(s3Server);
      httpUrl = advertisedUrl(config.advertiseHttp, config.http.host, nativeServer.port, multiaddrs());
      s3Url = advertisedUrl(config.advertiseS3, config.s3.host, s3Server.port, multiaddrs());
    },
    stop(abrupt) {
      // Called first by the peer's stop (the other parts still serve the requests in
      // flight), then again by the Lifecycle: the second call waits for the first.
      if (!stopping) {
        beforeStop?.();
        const closing = servers.reverse();
        servers = [];
        const graceMs = abrupt ? 0 : config.stopGraceMs;
        stopping = Promise.all(closing.map((s) => s.stop(graceMs))).then(() => {});
      }
      return stopping;
    },
  };
}
