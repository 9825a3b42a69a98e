// S3 object operations: PutObject (keeping the upload's checksum), GetObject / HeadObject
// (Range, ?partNumber, conditional requests, checksums with x-amz-checksum-mode),
// DeleteObject, DeleteObjects and CopyObject.
import { BadRequestError, MeshError } from "../../errors.ts";
import { decodePathPiece } from "../../metadata/keys.ts";
import type { ObjectIntegrity, ObjectManifest } from "../../metadata/types.ts";
import { mapLimit } from "../../util/map-limit.ts";
import { objectHeaders, storedHeaders, userMeta } from "../object-headers.ts";
import { parseRange } from "../range.ts";
import { isoDate, S3_META_PREFIX as META_PREFIX, requireAccess, type S3Request } from "./context.ts";
import { checksumHeaders, checksumModeEnabled, partNumberParam, partRange, partsCount } from "./checksum-fields.ts";
import { requestBody, smallBody, type S3Body } from "./request.ts";
import { UPLOAD_TOKEN_HEADER } from "../../uploads/records.ts";
import { deleteCondition, deleteHeaders, writeCondition } from "../write-conditions.ts";
import { tokenFor, tracked, type Alongside } from "../../uploads/tracking.ts";
import { cacheHeaders } from "../../remotes/pull-through.ts";
import { DELETE_MAX_BYTES, parseDeleteRequest, xmlDocument, xmlResponse } from "./xml.ts";
import { customerKey, keyForRead, requestedSse, sseHeaders } from "./sse.ts";
import { parseTaggingHeader, taggingCountHeader, type TagSet } from "./tags.ts";

/** The tags a write's `x-amz-tagging` header sets, checked (undefined: the header is absent). */
export function requestTags(h: Headers): TagSet | undefined {
  const v = h.get("x-amz-tagging");
  return v === null ? undefined : parseTaggingHeader(v);
}

/** CopyObject's tags: the source's (COPY, the default) or the request's x-amz-tagging (REPLACE; none then means none). */
function copyTags(h: Headers, source: TagSet | undefined): TagSet {
  const directive = (h.get("x-amz-tagging-directive") ?? "COPY").toUpperCase();
  if (directive === "COPY") return source ?? {};
  if (directive === "REPLACE") return requestTags(h) ?? {};
  throw new BadRequestError("Unknown tagging directive.", "InvalidArgument");
}
import { isVersionId } from "../../objects/version-id.ts";

/** The ?versionId= of a request, if it names one (an empty one names none). */
const versionIdParam = (q: URLSearchParams): string | undefined => q.get("versionId") || undefined;

/** Only the "null" version exists in an unversioned bucket. */
export function checkVersionId(q: URLSearchParams): void {
  const v = q.get("versionId");
  if (v !== null && v !== "null") throw new BadRequestError("Invalid version id specified", "InvalidArgument");
}
/** The header naming the version a response is about (versioned buckets; "null" for an object written before versioning). */
const versionHeader = (versionId: string | undefined): Record<string, string> => (versionId === undefined ? {} : { "x-amz-version-id": versionId });

export async function putObject(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const token = tokenFor(r.request);
  // Read before the body: a refused SSE request (KMS, a bad customer key) stores nothing.
  const wanted = requestedSse(r.request.headers);
  const tags = requestTags(r.request.headers);
  const seal = wanted ? (wanted.kind === "C" ? r.services.objects.newKey("C", wanted.customer.key) : r.services.objects.newKey("S3")) : undefined;
  const condition = writeCondition(r.request.headers);
  const body = requestBody(r.request, r.caller);
  const put = (stream: ReadableStream<Uint8Array> | null, alongside?: Alongside) =>
    r.services.objects.putObject(r.bucket, r.key, stream, {
      contentLength: body.contentLength,
      contentType: r.request.headers.get("content-type") ?? undefined,
      meta: userMeta(r.request.headers, META_PREFIX),
      headers: storedHeaders(r.request.headers),
      signal: r.request.signal,
      actor: r.who.accessKeyId,
      alongside,
      integrity: () => keptIntegrity(body),
      seal,
      condition,
      tags,
    });
  const session = r.services.uploads?.begin(token, r.bucket, r.key, body.contentLength);
  const result = await tracked(session, body.stream, r.request, put, (res) => res.size);
  const kept = keptIntegrity(body);
  const sse = sseHeaders(result.sse, wanted?.kind === "C" ? wanted.customer : null);
  return new Response(null, { status: 200, headers: { etag: `"${result.etag}"`, ...body.checksums, ...checksumHeaders(kept), ...sse, ...versionHeader(result.versionId), [UPLOAD_TOKEN_HEADER]: token } });
}

/** A single upload's checksum is always of the whole object. */
function keptIntegrity(body: S3Body): ObjectIntegrity | undefined {
  const c = body.checksum();
  return c && { checksum: { algorithm: c.algorithm, type: "FULL_OBJECT", value: c.value } };
}

/** Evaluate If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since as S3 does: 412 or 304, or null to go on. */
function preconditions(h: Headers, m: ObjectManifest, prefix = ""): 304 | 412 | null {
  const etag = `"${m.etag}"`;
  const matches = (list: string) => list.split(",").some((t) => t.trim() === "*" || t.trim() === etag || t.trim() === m.etag);
  // HTTP dates have whole seconds.
  const modified = Math.floor(m.lastModified / 1000) * 1000;
  const date = (name: string) => {
    const v = h.get(prefix + name);
    const t = v === null ? NaN : Date.parse(v);
    return Number.isNaN(t) ? null : t;
  };
  const ifMatch = h.get(prefix + "if-match");
  const ifNoneMatch = h.get(prefix + "if-none-match");
  if (ifMatch !== null && !matches(ifMatch)) return 412;
  const unmodifiedSince = date("if-unmodified-since");
  if (ifMatch === null && unmodifiedSince !== null && modified > unmodifiedSince) return 412;
  if (ifNoneMatch !== null && matches(ifNoneMatch)) return prefix ? 412 : 304;
  const modifiedSince = date("if-modified-since");
  if (ifNoneMatch === null && modifiedSince !== null && modified <= modifiedSince) return prefix ? 412 : 304;
  return null;
}

/** Response header overrides a (presigned) GET may ask for. */
const RESPONSE_OVERRIDES = ["content-type", "content-language", "expires", "cache-control", "content-disposition", "content-encoding"];

export async function getObject(r: S3Request, head: boolean): Promise<Response> {
  await requireAccess(r, "read");
  const versionId = versionIdParam(r.query);
  // A bucket with an origin pulls a miss or a stale copy through (src/remotes/pull-through.ts); a version is read as it is kept.
  const pull = versionId === undefined ? r.services.pull : undefined;
  const ranged = r.request.headers.has("range");
  const rangeOf = (size: number) => parseRange(r.request.headers.get("range"), size);
  const served = pull ? await pull.serve(r.bucket, r.key, { body: !head && !ranged, head, range: ranged ? rangeOf : undefined, signal: r.request.signal }) : undefined;
  // An origin's bytes served as they come are never encrypted here: a customer key sent for them is refused, not ignored.
  if (served && served.kind !== "stored") keyForRead(r.services.objects, {}, r.request.headers);
  if (served?.kind === "range") {
    // A range of an object not kept yet, read from the origin (no ETag: the mesh has not hashed it).
    const partial: Record<string, string> = { ...objectHeaders(served.manifest, META_PREFIX), ...cacheHeaders(served), "x-amz-version-id": "null" };
    delete partial.etag;
    partial["content-length"] = String(served.end - served.start);
    partial["content-range"] = `bytes ${served.start}-${served.end - 1}/${served.manifest.size}`;
    return new Response(served.body, { status: 206, headers: partial });
  }
  if (served?.kind === "stream") {
    // The first client of a fill: the bytes as they come (no ETag until they are all in).
    const streamed: Record<string, string> = { ...objectHeaders(served.manifest, META_PREFIX), ...cacheHeaders(served), "x-amz-version-id": "null" };
    delete streamed.etag;
    if (served.manifest.size > 0) streamed["content-length"] = String(served.manifest.size);
    return new Response(served.body, { status: 200, headers: streamed });
  }
  const m = served?.manifest ?? (await r.services.objects.headObject(r.bucket, r.key, { signal: r.request.signal, versionId }));
  // An SSE-C object answers nothing, not even its headers, without its key.
  const key = keyForRead(r.services.objects, m, r.request.headers);
  const headers = { ...objectHeaders(m, META_PREFIX), ...(served ? cacheHeaders(served) : {}), ...sseHeaders(m.sse?.kind, customerKey(r.request.headers)), ...taggingCountHeader(m.tags) };
  headers["x-amz-version-id"] = m.versionId ?? "null";
  for (const name of RESPONSE_OVERRIDES) {
    const v = r.query.get(`response-${name}`);
    // A header value is visible ASCII: anything else (a decoded "%E6%81%83") cannot be sent, and threw a 500.
    if (v !== null && !/^[\t\x20-\x7e]*$/.test(v)) throw new BadRequestError(`response-${name} must be printable ASCII`, "InvalidArgument");
    if (v !== null) headers[name] = v;
  }
  const verdict = preconditions(r.request.headers, m);
  if (verdict === 304) return new Response(null, { status: 304, headers: { etag: headers.etag, "last-modified": headers["last-modified"] } });
  if (verdict === 412) throw new MeshError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");

  const part = partNumberParam(r.query);
  if (part !== undefined && ranged) throw new BadRequestError("Cannot specify both Range header and partNumber query parameter", "InvalidRequest");
  const range = part !== undefined ? partRange(m, part) : parseRange(r.request.headers.get("range"), m.size);
  if (range === "unsatisfiable") throw new MeshError("InvalidRange", "The requested range is not satisfiable", { headers: { "content-range": `bytes */${m.size}` } });
  const [start, end] = range ?? [0, m.size];
  headers["content-length"] = String(end - start);
  // A part read is partial content even when it is all of the object (as S3 answers), unless there is nothing to range over.
  const partial = range !== undefined && m.size > 0;
  if (partial) headers["content-range"] = `bytes ${start}-${end - 1}/${m.size}`;
  if (part !== undefined && m.integrity?.parts) headers["x-amz-mp-parts-count"] = String(partsCount(m));
  // Checksums describe whole objects (or, by ?partNumber, whole parts): never a Range.
  if (checksumModeEnabled(r.request.headers) && !ranged) Object.assign(headers, checksumHeaders(m.integrity, part !== undefined && m.integrity?.parts ? part : undefined));
  const status = partial ? 206 : 200;
  if (head) return new Response(null, { status, headers });
  return new Response(await r.services.objects.readObject(m, start, end, { signal: r.request.signal, key }), { status, headers });
}

export async function deleteObject(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const done = await r.services.objects.deleteObject(r.bucket, r.key, { actor: r.who.accessKeyId, versionId: versionIdParam(r.query), condition: deleteHeaders(r.request.headers) });
  return new Response(null, { status: 204, headers: { ...versionHeader(done.versionId), ...(done.deleteMarker && { "x-amz-delete-marker": "true" }) } });
}

/** How many keys of one DeleteObjects request are deleted at once. */
const DELETE_CONCURRENCY = 32;

export async function deleteObjects(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const { quiet, objects } = parseDeleteRequest(await smallBody(requestBody(r.request, r.caller), DELETE_MAX_BYTES));
  await r.services.objects.requireBucket(r.bucket);
  const results = await mapLimit(objects, DELETE_CONCURRENCY, async (o) => {
    try {
      const done = await r.services.objects.deleteObject(r.bucket, o.key, { actor: r.who.accessKeyId, versionId: o.versionId || undefined, condition: deleteCondition(o) });
      return { ok: true as const, key: o.key, versionId: o.versionId, done };
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError("InternalError", "We encountered an internal error. Please try again.");
      return { ok: false as const, key: o.key, versionId: o.versionId, code: e.code, message: e.message };
    }
  });
  return xmlResponse("DeleteResult", {
    Deleted: quiet
      ? []
      : results.flatMap((x) => {
          if (!x.ok) return [];
          // A delete marker made (no version id asked) or removed (its id asked), as S3 reports them.
          const marker = x.done.deleteMarker ? (x.versionId ? { DeleteMarker: true } : { DeleteMarker: true, DeleteMarkerVersionId: x.done.versionId }) : {};
          return [{ Key: x.key, ...(x.versionId ? { VersionId: x.versionId } : {}), ...marker }];
        }),
    Error: results.flatMap((x) => (x.ok ? [] : [{ Key: x.key, ...(x.versionId ? { VersionId: x.versionId } : {}), Code: x.code, Message: x.message }])),
  });
}

/** The bucket, key and version named by `x-amz-copy-source` ("/bucket/key" or "bucket/key", percent-encoded, optional ?versionId=). */
export function copySource(r: S3Request): { bucket: string; key: string; versionId?: string } {
  const raw = r.request.headers.get("x-amz-copy-source") ?? "";
  const [path, query] = raw.split("?", 2);
  const asked = query ? /^versionId=([^&]*)$/.exec(query) : null;
  if (query && !asked) throw new BadRequestError("Invalid version id specified", "InvalidArgument");
  const versionId = asked ? decodePathPiece(asked[1]) : undefined;
  if (versionId !== undefined && !isVersionId(versionId)) throw new BadRequestError("Invalid version id specified", "InvalidArgument");
  const trimmed = path.startsWith("/") ? path.slice(1) : path;
  const slash = trimmed.indexOf("/");
  if (slash <= 0 || slash === trimmed.length - 1) throw new BadRequestError("Copy Source must mention the source bucket and key: sourcebucket/sourcekey", "InvalidArgument");
  return { bucket: decodePathPiece(trimmed.slice(0, slash)), key: decodePathPiece(trimmed.slice(slash + 1)), ...(versionId !== undefined && { versionId }) };
}

/** The source manifest of a copy, after permission and x-amz-copy-source-if-* checks. */
export async function readCopySource(r: S3Request): Promise<{ bucket: string; key: string; versionId?: string; manifest: ObjectManifest }> {
  const src = copySource(r);
  await requireAccess(r, "read", src.bucket);
  let manifest = await r.services.objects.headObject(src.bucket, src.key, { versionId: src.versionId });
  // An object imported by an origin sync has no chunks to share yet: fetch it once (the pull-through keeps it).
  if (manifest.remote && r.services.pull && src.versionId === undefined) manifest = (await r.services.pull.serve(src.bucket, src.key, { body: false, signal: r.request.signal })).manifest;
  if (preconditions(r.request.headers, manifest, "x-amz-copy-source-") !== null) {
    throw new MeshError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold");
  }
  return { ...src, manifest };
}

export async function copyObject(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const src = await readCopySource(r);
  const condition = writeCondition(r.request.headers);
  const directive = (r.request.headers.get("x-amz-metadata-directive") ?? "COPY").toUpperCase();
  if (directive !== "COPY" && directive !== "REPLACE") throw new BadRequestError("Unknown metadata directive.", "InvalidArgument");
  const h = r.request.headers;
  // The source's key (SSE-C: the x-amz-copy-source-…-customer-* headers) and what the target asks for.
  const sourceKey = keyForRead(r.services.objects, src.manifest, h, "x-amz-copy-source-");
  const wanted = requestedSse(h);
  const tags = copyTags(h, src.manifest.tags);
  if (directive === "COPY" && !wanted && src.bucket === r.bucket && src.key === r.key && src.versionId === undefined) {
    throw new BadRequestError("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.", "InvalidRequest");
  }
  const changes =
    directive === "REPLACE" ? { contentType: h.get("content-type") || "application/octet-stream", meta: userMeta(h, META_PREFIX), headers: storedHeaders(h) } : undefined;
  // The target is encrypted as the request says, else as its bucket's default says, whatever the source was.
  const target = wanted?.kind ?? ((await r.services.objects.settings.encryption.get(r.bucket)) ? "S3" : undefined);
  const source = src.manifest.sse?.kind;
  let m: { lastModified: number; etag: string; versionId?: string };
  if (target === source && target !== "C") {
    // Same protection (none, or SSE-S3 under the mesh key): the chunks are shared, sealed as they are.
    m = await r.services.objects.copyObject(src.manifest, r.bucket, r.key, changes, { actor: r.who.accessKeyId, condition }, tags);
  } else {
    // Another key or kind: the bytes are opened and sealed again on this peer (a new object key, always, for SSE-C).
    const seal = target === "C" && wanted?.kind === "C" ? r.services.objects.newKey("C", wanted.customer.key) : target === "S3" ? r.services.objects.newKey("S3") : undefined;
    const body = await r.services.objects.readObject(src.manifest, 0, src.manifest.size, { signal: r.request.signal, key: sourceKey });
    const kept = changes ?? { contentType: src.manifest.contentType, meta: src.manifest.meta, headers: src.manifest.headers };
    try {
      const put = await r.services.objects.putObject(r.bucket, r.key, body, { ...kept, contentLength: src.manifest.size, signal: r.request.signal, actor: r.who.accessKeyId, seal, condition, tags });
      m = { etag: put.etag, lastModified: put.lastModified ?? Date.now(), versionId: put.versionId };
    } catch (err) {
      await body.cancel(err).catch(() => {});
      throw err;
    }
  }
  return new Response(xmlDocument("CopyObjectResult", { LastModified: isoDate(m.lastModified), ETag: `"${m.etag}"` }), {
    status: 200,
    headers: { "content-type": "application/xml", "x-amz-copy-source-version-id": src.manifest.versionId ?? "null", ...versionHeader(m.versionId), ...sseHeaders(target, wanted?.kind === "C" ? wanted.customer : null) },
  });
}
