// Each request's id: sent back in a response header (x-request-id natively, x-amz-request-id
// on S3) and written in the log line of any 5xx, so that an operator can find what a client
// saw. Kept per Request object, so the adapter, the router and the error function that
// handle one request all name it by the same id without passing it around.
import crypto from "node:crypto";

const ids = new WeakMap<Request, string>();

/** A fresh id: 16 uppercase hex digits, as S3's request ids look. */
export function newRequestId(): string {
  return crypto.randomBytes(8).toString("hex").toUpperCase();
}

/** Give `to` the id of `from`: the same request, handed on as another Request object. */
export function inheritRequestId(from: Request, to: Request): void {
  ids.set(to, requestIdOf(from));
}

/** The id of `request` (made on first use). */
export function requestIdOf(request: Request): string {
  let id = ids.get(request);
  if (id === undefined) {
    id = newRequestId();
    ids.set(request, id);
  }
  return id;
}
