// What both APIs answer while the peer is still starting (its servers listen before every
// part is wired): 503 with Retry-After, in each API's own error format, never a 500.
import { MeshError } from "../errors.ts";
import type { ApiErrors } from "./errors.ts";

const MESSAGE = "the peer is starting; retry in a moment";

/** The "not ready yet" answer to `request` of the API whose errors are `errors`. */
export function startingResponse(errors: ApiErrors, request: Request): Response {
  return errors.respond(new MeshError("ServiceUnavailable", MESSAGE), request);
}
