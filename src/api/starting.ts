// What both APIs answer while the peer is still starting (its servers listen before every
// part is wired): 503 with Retry-After, in each API's own error format, never a 500.
import { errorResponse } from "./errors.ts";
import { xmlError } from "./s3/xml.ts";

const MESSAGE = "the peer is starting; retry in a moment";

/** The "not ready yet" answer of the native or the S3 API. */
export function startingResponse(api: "native" | "s3"): Response {
  return api === "native" ? errorResponse(503, "ServiceUnavailable", MESSAGE) : xmlError(503, "ServiceUnavailable", MESSAGE, "/", crypto.randomUUID());
}
