// The S3-compatible API: path-style requests (`/bucket/key`), authenticated with SigV4,
// routed by method and sub-resource (S3 names operations in the query string, so this
// is a plain table rather than an Elysia router). Anything not in the table answers
// S3's NotImplemented document: never a crash, never a wrong success. Two requests are
// answered before any SigV4 check, as S3 answers them: a CORS preflight (OPTIONS; a browser
// sends no credentials with it) and a browser POST upload (its signature is in the form).
// An answer to a request with an Origin that a rule of the bucket allows carries the CORS
// headers, errors included.
import type { AccessKeys } from "../../auth/access-keys.ts";
import { MeshError } from "../../errors.ts";
import { decodePathPiece, validateBucketName } from "../../metadata/keys.ts";
import type { ApiErrors } from "../errors.ts";
import { requestIdOf } from "../request-id.ts";
import { getObjectAttributes } from "./attributes.ts";
import * as buckets from "./buckets.ts";
import * as encryption from "./bucket-encryption.ts";
import * as cors from "./cors.ts";
import * as lifecycle from "./lifecycle.ts";
import * as tagging from "./tagging.ts";
import { postObject } from "./post-upload.ts";
import type { S3Request, S3Services } from "./context.ts";
import { listenBucketNotification } from "./listen.ts";
import * as multipart from "./multipart.ts";
import * as objects from "./objects.ts";
import type { AuthLimiter } from "../client-limits.ts";
import { refuseUnsupportedHeaders } from "./refusals.ts";
import { authenticate } from "./request.ts";
import { splitUrl } from "./sigv4.ts";

type Operation = (r: S3Request) => Promise<Response>;

const getObject: Operation = (r) => objects.getObject(r, false);
const headObject: Operation = (r) => objects.getObject(r, true);

/** Each operation's S3 name (metrics and the access log). */
const OPERATION_NAMES = new Map<Operation, string>([
  [buckets.listBuckets, "ListBuckets"],
  [buckets.createBucket, "CreateBucket"],
  [buckets.headBucket, "HeadBucket"],
  [buckets.deleteBucket, "DeleteBucket"],
  [objects.deleteObjects, "DeleteObjects"],
  [buckets.getBucketLocation, "GetBucketLocation"],
  [buckets.getBucketVersioning, "GetBucketVersioning"],
  [buckets.putBucketVersioning, "PutBucketVersioning"],
  [buckets.listObjectVersions, "ListObjectVersions"],
  [multipart.listMultipartUploads, "ListMultipartUploads"],
  [buckets.listObjectsV2, "ListObjectsV2"],
  [buckets.listObjectsV1, "ListObjects"],
  [multipart.uploadPartCopy, "UploadPartCopy"],
  [multipart.uploadPart, "UploadPart"],
  [objects.copyObject, "CopyObject"],
  [objects.putObject, "PutObject"],
  [multipart.listParts, "ListParts"],
  [getObject, "GetObject"],
  [headObject, "HeadObject"],
  [getObjectAttributes, "GetObjectAttributes"],
  [multipart.abortMultipartUpload, "AbortMultipartUpload"],
  [objects.deleteObject, "DeleteObject"],
  [multipart.createMultipartUpload, "CreateMultipartUpload"],
  [multipart.completeMultipartUpload, "CompleteMultipartUpload"],
  [listenBucketNotification, "ListenBucketNotification"],
  [encryption.putBucketEncryption, "PutBucketEncryption"],
  [encryption.getBucketEncryption, "GetBucketEncryption"],
  [encryption.deleteBucketEncryption, "DeleteBucketEncryption"],
  [tagging.putObjectTagging, "PutObjectTagging"],
  [tagging.getObjectTagging, "GetObjectTagging"],
  [tagging.deleteObjectTagging, "DeleteObjectTagging"],
  [tagging.putBucketTagging, "PutBucketTagging"],
  [tagging.getBucketTagging, "GetBucketTagging"],
  [tagging.deleteBucketTagging, "DeleteBucketTagging"],
  [cors.putBucketCors, "PutBucketCors"],
  [cors.getBucketCors, "GetBucketCors"],
  [cors.deleteBucketCors, "DeleteBucketCors"],
  [lifecycle.putBucketLifecycle, "PutBucketLifecycleConfiguration"],
  [lifecycle.getBucketLifecycle, "GetBucketLifecycleConfiguration"],
  [lifecycle.deleteBucketLifecycle, "DeleteBucketLifecycle"],
]);

/** The S3 operation each request was routed to (a request not routed has none). */
const operations = new WeakMap<Request, string>();

/** The S3 operation `request` was routed to ("Unknown" if none: unauthenticated, malformed or not implemented). */
export function s3OperationOf(request: Request): string {
  return operations.get(request) ?? "Unknown";
}

/** Query parameters that name an operation (S3 "sub-resources") this API serves. */
const ACTIONS = new Set(["uploads", "uploadId", "partNumber", "delete", "location", "versioning", "versions", "list-type", "events", "attributes", "encryption", "tagging", "cors", "lifecycle"]);
/** Query parameters that only qualify an operation. */
const QUALIFIERS = new Set([
  "prefix", "delimiter", "max-keys", "marker", "continuation-token", "start-after", "encoding-type", "fetch-owner",
  "key-marker", "version-id-marker", "upload-id-marker", "max-uploads", "max-parts", "part-number-marker", "versionId", "x-id",
]);

/** Query parameters that qualify MinIO's ListenBucketNotification (`?events=`) and nothing else. */
const LISTEN_QUALIFIERS = new Set(["suffix", "ping"]);

/** An operation this API does not serve (a sub-resource such as ?policy, ?acl or ?tagging). */
function unsupportedParam(q: URLSearchParams): string | undefined {
  const listening = q.has("events");
  for (const name of q.keys()) {
    if (ACTIONS.has(name) || QUALIFIERS.has(name) || name.startsWith("response-") || name.toLowerCase().startsWith("x-amz-")) continue;
    if (listening && LISTEN_QUALIFIERS.has(name)) continue;
    return name;
  }
  return undefined;
}

function route(method: string, bucket: string, key: string, q: URLSearchParams, headers: Headers): Operation | undefined {
  const has = (name: string) => q.has(name);
  // MinIO's ListenBucketNotification; not its bucket-less ListenNotification, nor anything else with ?events.
  if (has("events")) return method === "GET" && bucket && !key ? listenBucketNotification : undefined;
  if (!bucket) return method === "GET" ? buckets.listBuckets : undefined;
  if (has("encryption")) {
    // A bucket's sub-resource only, with nothing else but the SDK's x-id.
    if (key || [...q.keys()].some((k) => k !== "encryption" && k !== "x-id")) return undefined;
    return method === "PUT" ? encryption.putBucketEncryption : method === "GET" ? encryption.getBucketEncryption : method === "DELETE" ? encryption.deleteBucketEncryption : undefined;
  }
  if (has("tagging")) {
    // Nothing else but the SDK's x-id and (on an object) a version id.
    if ([...q.keys()].some((k) => k !== "tagging" && k !== "x-id" && !(key && k === "versionId"))) return undefined;
    if (key) return method === "PUT" ? tagging.putObjectTagging : method === "GET" ? tagging.getObjectTagging : method === "DELETE" ? tagging.deleteObjectTagging : undefined;
    return method === "PUT" ? tagging.putBucketTagging : method === "GET" ? tagging.getBucketTagging : method === "DELETE" ? tagging.deleteBucketTagging : undefined;
  }
  if (has("cors")) {
    if (key || [...q.keys()].some((k) => k !== "cors" && k !== "x-id")) return undefined;
    return method === "PUT" ? cors.putBucketCors : method === "GET" ? cors.getBucketCors : method === "DELETE" ? cors.deleteBucketCors : undefined;
  }
  if (has("lifecycle")) {
    if (key || [...q.keys()].some((k) => k !== "lifecycle" && k !== "x-id")) return undefined;
    return method === "PUT" ? lifecycle.putBucketLifecycle : method === "GET" ? lifecycle.getBucketLifecycle : method === "DELETE" ? lifecycle.deleteBucketLifecycle : undefined;
  }
  if (!key) {
    switch (method) {
      case "PUT":
        if (has("versioning")) return buckets.putBucketVersioning;
        return q.size === 0 || (q.size === 1 && has("x-id")) ? buckets.createBucket : undefined;
      case "HEAD":
        return buckets.headBucket;
      case "DELETE":
        return has("uploadId") || has("delete") ? undefined : buckets.deleteBucket;
      case "POST":
        return has("delete") ? objects.deleteObjects : undefined;
      case "GET":
        if (has("location")) return buckets.getBucketLocation;
        if (has("versioning")) return buckets.getBucketVersioning;
        if (has("versions")) return buckets.listObjectVersions;
        if (has("uploads")) return multipart.listMultipartUploads;
        if (has("list-type")) return q.get("list-type") === "2" ? buckets.listObjectsV2 : undefined;
        return buckets.listObjectsV1;
    }
    return undefined;
  }
  const copy = headers.has("x-amz-copy-source");
  switch (method) {
    case "PUT":
      if (has("uploadId") && has("partNumber")) return copy ? multipart.uploadPartCopy : multipart.uploadPart;
      if (has("uploadId") || has("partNumber") || has("uploads") || has("attributes")) return undefined;
      return copy ? objects.copyObject : objects.putObject;
    case "GET":
      if (has("uploadId")) return multipart.listParts;
      if (has("attributes")) return has("uploads") || has("partNumber") ? undefined : getObjectAttributes;
      // ?partNumber=N reads one part of the object (objects.ts).
      return has("uploads") ? undefined : getObject;
    case "HEAD":
      return has("uploadId") || has("attributes") ? undefined : headObject;
    case "DELETE":
      if (has("attributes")) return undefined;
      return has("uploadId") ? multipart.abortMultipartUpload : objects.deleteObject;
    case "POST":
      if (has("uploads")) return multipart.createMultipartUpload;
      if (has("uploadId")) return multipart.completeMultipartUpload;
      return undefined;
  }
  return undefined;
}

/** Dependencies of the S3 API. */
export interface S3ApiDeps extends S3Services {
  keys: AccessKeys;
  /** False with `--insecure-no-auth`. */
  authEnabled: boolean;
  /** Rate limits on keys and on failed authentications. */
  limiter?: AuthLimiter;
  /** The S3 API's error function (s3/errors.ts). */
  errors: ApiErrors;
}

/** Build the S3 request handler of one peer. */
export function createS3Handler(deps: S3ApiDeps): (request: Request) => Promise<Response> {
  const services: S3Services = { objects: deps.objects, multipart: deps.multipart, uploads: deps.uploads, listen: deps.listen, pull: deps.pull };
  const post = { services, keys: deps.keys, authEnabled: deps.authEnabled, limiter: deps.limiter };
  /** The bucket a request names, for its CORS headers ("" when it names none or cannot be parsed). */
  const bucketOf = (request: Request) => {
    const { rawPath } = splitUrl(request.url);
    const slash = rawPath.indexOf("/", 1);
    try {
      const bucket = decodePathPiece(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
      validateBucketName(bucket);
      return bucket;
    } catch {
      return "";
    }
  };
  const serve = async (request: Request): Promise<Response> => {
    const { rawPath, rawQuery } = splitUrl(request.url);
    let response: Response;
    try {
      const slash = rawPath.indexOf("/", 1);
      const bucket = decodePathPiece(slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash));
      const key = slash < 0 ? "" : decodePathPiece(rawPath.slice(slash + 1));
      const query = new URLSearchParams(rawQuery);
      if (request.method === "OPTIONS") {
        operations.set(request, "PreflightRequest");
        if (bucket) validateBucketName(bucket);
        response = await cors.preflight(deps.objects, bucket, request);
        response.headers.set(deps.errors.requestIdHeader, requestIdOf(request));
        return response;
      }
      if (request.method === "POST" && bucket && !key && query.size === 0) {
        operations.set(request, "PostObject");
        validateBucketName(bucket);
        response = await postObject(post, request, bucket);
        response.headers.set(deps.errors.requestIdHeader, requestIdOf(request));
        return response;
      }
      // Routing reads only the request line and headers: named before authentication, so a refused call counts under its operation.
      const unsupported = unsupportedParam(query);
      const op = unsupported === undefined ? route(request.method, bucket, key, query, request.headers) : undefined;
      const name = op && OPERATION_NAMES.get(op);
      if (name) operations.set(request, name);
      const caller = await authenticate(request, deps.keys, deps.authEnabled, deps.limiter);
      if (!op) {
        const what = unsupported ? `the ?${unsupported} sub-resource` : `${request.method} on this resource`;
        throw new MeshError("NotImplemented", `A header or query you provided implies functionality that is not implemented (${what})`);
      }
      if (bucket) validateBucketName(bucket);
      if (name) refuseUnsupportedHeaders(name, request.headers);
      response = await op({ request, method: request.method, bucket, key, query, caller, who: caller.principal, services });
    } catch (err) {
      return deps.errors.respond(err, request);
    }
    response.headers.set(deps.errors.requestIdHeader, requestIdOf(request));
    return response;
  };
  return async (request) => {
    const response = await serve(request);
    // A preflight's own answer already says what CORS allows.
    if (request.method === "OPTIONS" || !request.headers.has("origin")) return response;
    return cors.withCors(deps.objects, bucketOf(request), request, response);
  };
}
