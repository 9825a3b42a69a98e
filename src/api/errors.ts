// The one place that turns errors into HTTP responses for the native API:
// JSON `{error: {code, message}}` with S3's codes where one fits.
import { MeshError, RequestTimeoutError, SlowDownError } from "../errors.ts";

/** Body of every native API error. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/** Seconds a client should wait before retrying a 503 (the mesh is starting or lacks a quorum). */
export const RETRY_AFTER_SECONDS = "1";

/** A JSON error response; a 503 tells the client when to retry. */
export function errorResponse(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } } satisfies ErrorBody, { status, headers: status === 503 ? { "retry-after": RETRY_AFTER_SECONDS } : {} });
}

/** Map anything thrown by a route (or Elysia's own error codes) to a response. */
export function toErrorResponse(code: string | number, error: unknown): Response {
  if (error instanceof SlowDownError) return slowDownResponse(error);
  if (error instanceof RequestTimeoutError) return errorResponse(408, error.code, error.message);
  if (error instanceof MeshError) return errorResponse(error.status, error.code, error.message);
  switch (code) {
    case "NOT_FOUND":
      return errorResponse(404, "NotFound", "no such route");
    case "VALIDATION":
    case "PARSE":
      return errorResponse(400, "InvalidRequest", shortMessage(error));
    case "INVALID_COOKIE_SIGNATURE":
      return errorResponse(400, "InvalidRequest", "invalid cookie");
  }
  return errorResponse(500, "InternalError", shortMessage(error));
}

/** The native API's "too many requests": 429 with Retry-After. */
export function slowDownResponse(error: SlowDownError): Response {
  return Response.json({ error: { code: error.code, message: error.message } } satisfies ErrorBody, { status: 429, headers: { "retry-after": String(error.retryAfterSeconds) } });
}

function shortMessage(error: unknown): string {
  const msg = error instanceof Error ? error.message : String(error);
  return msg.length > 500 ? msg.slice(0, 500) + "..." : msg;
}
