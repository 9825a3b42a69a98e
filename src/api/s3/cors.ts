// S3's CORS: Put/Get/DeleteBucketCors (`?cors`, a side row of the buckets shard), the preflight
// `OPTIONS /{bucket}/{key}` answered without credentials as S3 does (a browser sends none
// with it), and the CORS headers S3 adds to actual answers, errors included, for a request
// whose Origin a rule of the bucket allows. Matching is in cors-rules.ts.
import { BadRequestError, MeshError } from "../../errors.ts";
import type { ObjectService } from "../../objects/object-service.ts";
import { bucketDocument } from "./bucket-documents.ts";
import { corsBody, corsHeaders, CORS_MAX_BYTES, matchRule, parseCorsXml, requestedHeaders } from "./cors-rules.ts";

/** PutBucketCors (the whole configuration is replaced), GetBucketCors (or S3's NoSuchCORSConfiguration), DeleteBucketCors. */
export const { put: putBucketCors, get: getBucketCors, delete: deleteBucketCors } = bucketDocument({
  setting: "cors",
  root: "CORSConfiguration",
  maxBytes: CORS_MAX_BYTES,
  parse: parseCorsXml,
  body: corsBody,
  missing: () => new MeshError("NoSuchCORSConfiguration", "The CORS configuration does not exist"),
  putStatus: 200,
});

const refused = () =>
  new MeshError(
    "AccessForbidden",
    "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
  );

/**
 * A preflight (OPTIONS on a bucket or object), unauthenticated as S3 answers it: 200 with the
 * first matching rule's headers, 403 AccessForbidden when no rule matches or the bucket has
 * no CORS configuration, 400 without Origin or Access-Control-Request-Method. Only the
 * bucket's CORS rules are read: nothing about its objects is revealed.
 */
export async function preflight(objects: Pick<ObjectService, "settings">, bucket: string, request: Request): Promise<Response> {
  const origin = request.headers.get("origin");
  if (!origin) throw new BadRequestError("Insufficient information. Origin request header needed.", "BadRequest");
  const method = request.headers.get("access-control-request-method");
  if (!method) throw new BadRequestError("Invalid Access-Control-Request-Method: null", "BadRequest");
  if (!bucket) throw refused();
  const rules = await objects.settings.cors.get(bucket, { signal: request.signal });
  if (!rules) throw new MeshError("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.");
  const ask = { origin, method: method.trim(), headers: requestedHeaders(request.headers.get("access-control-request-headers")) };
  const rule = matchRule(rules, ask);
  if (!rule) throw refused();
  return new Response(null, { status: 200, headers: corsHeaders(rule, ask) });
}

/**
 * Add the CORS headers an actual answer to `request` gets: when it carries an Origin and a
 * rule of the bucket allows that origin and the request's method. Failures to read the
 * rules leave the answer as it is (the request itself already succeeded or failed).
 */
export async function withCors(objects: Pick<ObjectService, "settings">, bucket: string, request: Request, response: Response): Promise<Response> {
  const origin = request.headers.get("origin");
  if (!origin || !bucket) return response;
  const rules = await objects.settings.cors.get(bucket, { signal: request.signal }).catch(() => null);
  if (!rules) return response;
  const ask = { origin, method: request.method };
  const rule = matchRule(rules, ask);
  if (!rule) return response;
  const headers = corsHeaders(rule, ask);
  try {
    for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
    return response;
  } catch {
    // An answer whose headers are immutable (one passed through from fetch) is rebuilt around its body.
    const copy = new Response(response.body, response);
    for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
    return copy;
  }
}
