// How the APIs answer errors. Each API has one error function (`respond`): the native API's
// JSON `{error: {code, message}}` here, S3's XML in s3/errors.ts. Both take anything thrown,
// answer with the status of its code (src/errors.ts), the headers the error asks for and
// the request id, and log every 5xx under that id.
import { MeshError, httpStatus, type Api } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import { newRequestId, requestIdOf } from "./request-id.ts";
import { pathOf } from "./request-target.ts";

/** Body of every native API error. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Seconds a client should wait before retrying a 503 that does not say (the mesh is starting or lacks a quorum). */
const RETRY_AFTER_SECONDS = "1";

/** How one API answers errors. */
export interface ApiErrors {
  readonly api: Api;
  /** The response header that carries the request id. */
  readonly requestIdHeader: string;
  /** The one error response of this API: anything thrown while serving `request` (absent: a request too malformed to build). */
  respond(error: unknown, request?: Request): Response;
}

/** What an error looks like on one API: its body, built from the error and the request's id. */
export interface ErrorRendering {
  api: Api;
  requestIdHeader: string;
  contentType: string;
  body(err: MeshError, requestId: string, request: Request | undefined): string;
}

/** The message of an error this code did not expect: no internals, just where to look. */
const INTERNAL_MESSAGE = "We encountered an internal error. Please try again.";

/** Anything thrown, as the MeshError a client is told about. */
function asMeshError(error: unknown): MeshError {
  return error instanceof MeshError ? error : new MeshError("InternalError", INTERNAL_MESSAGE, { cause: error });
}

/**
 * Log a 5xx under its request id. A failure this code did not expect is an error with its
 * stack; a refusal it chose (no quorum, a peer unreachable) a warning; shedding load and
 * "not implemented" are info, as a flood of them must not flood the log.
 */
function logServerError(log: Logger, err: MeshError, cause: unknown, status: number, requestId: string, request: Request | undefined): void {
  // The path, never the query: a presigned URL carries its signature there.
  const what = request ? `${request.method} ${pathOf(request.url).slice(0, 200)}` : "(unparsed request)";
  const line = `request ${requestId} ${what}: ${status} ${err.code}: ${err.message.slice(0, 500)}`;
  if (!(cause instanceof MeshError)) log.error(`${line}: ${(cause instanceof Error ? (cause.stack ?? cause.message) : String(cause)).slice(0, 4000)}`);
  else if (status === 500) log.error(line);
  else if (err.code === "SlowDown" || err.code === "NotImplemented") log.info(line);
  else log.warn(line);
}

/** Build an API's error function from how it renders an error. */
export function errorResponder(rendering: ErrorRendering, log: Logger): ApiErrors {
  return {
    api: rendering.api,
    requestIdHeader: rendering.requestIdHeader,
    respond(error, request) {
      const err = asMeshError(error);
      const status = httpStatus(err.code, rendering.api);
      const requestId = request ? requestIdOf(request) : newRequestId();
      // A client that went away caused its request's own abort: nobody reads this answer, and nothing failed here.
      if (request?.signal.aborted) log.debug(`request ${requestId}: the client went away (${err.code})`);
      else if (status >= 500) logServerError(log, err, error, status, requestId, request);
      const headers: Record<string, string> = { "content-type": rendering.contentType, ...err.headers, [rendering.requestIdHeader]: requestId };
      if ((status === 503 || status === 429) && headers["retry-after"] === undefined) headers["retry-after"] = RETRY_AFTER_SECONDS;
      // A HEAD answer has no body, errors included.
      const body = request?.method === "HEAD" ? null : rendering.body(err, requestId, request);
      return new Response(body, { status, headers });
    },
  };
}

/** The native API's errors: JSON `{error: {code, message}}`, with the request id in `x-request-id`. */
export function nativeErrors(log: Logger): ApiErrors {
  return errorResponder(
    {
      api: "native",
      requestIdHeader: "x-request-id",
      contentType: "application/json",
      body: (err) => JSON.stringify({ error: { code: err.code, message: err.message } } satisfies ErrorBody),
    },
    log,
  );
}
