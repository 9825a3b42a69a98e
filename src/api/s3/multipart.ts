// S3 multipart operations: Create, UploadPart, UploadPartCopy, Complete, Abort,
// ListParts and ListMultipartUploads, over src/objects/multipart.ts.
import { MAX_PART_NUMBER } from "../../objects/multipart.ts";
import { BadRequestError, MeshError } from "../../errors.ts";
import { uploadListKey } from "../../metadata/keys.ts";
import { storedHeaders, userMeta } from "../object-headers.ts";
import { countParam, OWNER, S3_META_PREFIX, isoDate, urlEncodeKey, requireAccess, type S3Request } from "./context.ts";
import { readCopySource, requestTags } from "./objects.ts";
import { requestBody, smallBody } from "./request.ts";
import { checksumField, checksumHeader, checksumXml } from "./checksum-fields.ts";
import { CHECKSUM_ALGORITHMS, parseAlgorithm } from "../../objects/checksums.ts";
import { uploadChecksum, type CompleteChecksums, type UploadChecksum } from "../../objects/multipart-checksums.ts";
import { COMPLETE_MAX_BYTES, parseCompleteRequest, xmlResponse } from "./xml.ts";
import { customerKey, keyForRead, keyForWrite, requestedSse, sseHeaders } from "./sse.ts";
import type { UploadRecord } from "../../objects/multipart.ts";
import type { SseKind } from "../../metadata/types.ts";
import { UPLOAD_TOKEN_HEADER } from "../../uploads/records.ts";
import { writeCondition } from "../write-conditions.ts";
import { multipartToken, tokenFor, tracked } from "../../uploads/tracking.ts";

/** The token of a multipart request (the client's, else the upload's), when uploads are recorded. */
async function tokenOf(r: S3Request): Promise<string | undefined> {
  return r.services.uploads && multipartToken(r.request, r.services.multipart, r.bucket, r.key, uploadId(r));
}

/** A response with the upload's token, when it has one. */
function withToken(response: Response, token: string | undefined): Response {
  if (token) response.headers.set(UPLOAD_TOKEN_HEADER, token);
  return response;
}

function uploadId(r: S3Request): string {
  return r.query.get("uploadId") ?? "";
}

function partNumber(r: S3Request): number {
  const n = Number(r.query.get("partNumber"));
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) throw new BadRequestError("Part number must be an integer between 1 and 10000, inclusive", "InvalidArgument");
  return n;
}

export async function createMultipartUpload(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const h = r.request.headers;
  const token = tokenFor(r.request);
  const uploads = r.services.uploads;
  const checksum = createChecksum(h);
  // The upload's data key is made now (SSE-C: wrapped by the request's key); every part is sealed with it.
  const wanted = requestedSse(h);
  const sealKey = await keyForWrite(r.services.objects, r.bucket, wanted);
  const tags = requestTags(h);
  const id = await r.services.multipart.create(r.bucket, r.key, {
    contentType: h.get("content-type") || "application/octet-stream",
    meta: userMeta(h, S3_META_PREFIX),
    headers: storedHeaders(h),
    ...(uploads ? { uploadToken: token } : {}),
    ...(checksum ? { checksum } : {}),
    ...(sealKey && { sse: sealKey.info }),
    ...(tags && Object.keys(tags).length ? { tags } : {}),
  });
  await uploads?.beginMultipart(token, r.bucket, r.key, id);
  const echo: Record<string, string> = checksum ? { "x-amz-checksum-algorithm": checksum.algorithm, "x-amz-checksum-type": checksum.type } : {};
  const sse = sseHeaders(sealKey?.info.kind, wanted?.kind === "C" ? wanted.customer : null);
  return withToken(xmlResponse("InitiateMultipartUploadResult", { Bucket: r.bucket, Key: r.key, UploadId: id }, 200, { ...echo, ...sse }), uploads && token);
}

/** CreateMultipartUpload's x-amz-checksum-algorithm and x-amz-checksum-type. */
function createChecksum(h: Headers): UploadChecksum | undefined {
  const raw = h.get("x-amz-checksum-algorithm");
  const algorithm = raw === null ? undefined : parseAlgorithm(raw);
  if (raw !== null && !algorithm) throw new BadRequestError("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]", "InvalidRequest");
  return uploadChecksum(algorithm, h.get("x-amz-checksum-type") ?? undefined);
}

/** CompleteMultipartUpload's whole-object x-amz-checksum-<alg> and x-amz-checksum-type headers. */
function completeChecksum(h: Headers): Omit<CompleteChecksums, "parts"> {
  const sent = CHECKSUM_ALGORITHMS.filter((alg) => h.has(checksumHeader(alg)));
  if (sent.length > 1) throw new BadRequestError("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.", "InvalidRequest");
  const type = h.get("x-amz-checksum-type") ?? undefined;
  return { ...(sent.length ? { object: { algorithm: sent[0], value: h.get(checksumHeader(sent[0]))! } } : {}), ...(type ? { type } : {}) };
}

/**
 * The key a part is sealed with: the upload's, opened with the mesh key (SSE-S3) or with the
 * customer key the part request must carry (SSE-C: missing is InvalidRequest, another key
 * AccessDenied); `seen` learns the upload's kind for the response headers.
 */
function partSealer(r: S3Request, seen: { kind?: SseKind }) {
  return (upload: UploadRecord) => {
    seen.kind = upload.sse?.kind;
    return keyForRead(r.services.objects, upload, r.request.headers);
  };
}

export async function uploadPart(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const number = partNumber(r);
  const token = await tokenOf(r);
  const body = requestBody(r.request, r.caller);
  const seen: { kind?: SseKind } = {};
  const send = (stream: ReadableStream<Uint8Array> | null) =>
    r.services.multipart.uploadPart(r.bucket, r.key, uploadId(r), number, stream, body.contentLength, { signal: r.request.signal, sent: body, seal: partSealer(r, seen) });
  const part = await tracked(token ? r.services.uploads?.beginPart(token, uploadId(r), number) : undefined, body.stream, r.request, send, (p) => p.size);
  // The part's kept checksum (the client's, or computed for the upload's algorithm) is sent back as S3 does.
  const alg = part.checksum ? (body.checksum()?.algorithm ?? (await r.services.multipart.requireUpload(r.bucket, r.key, uploadId(r))).checksum?.algorithm) : undefined;
  const kept = alg && part.checksum ? { [checksumHeader(alg)]: part.checksum } : {};
  const sse = sseHeaders(seen.kind, customerKey(r.request.headers));
  return withToken(new Response(null, { status: 200, headers: { etag: `"${part.etag}"`, ...body.checksums, ...kept, ...sse } }), token);
}

export async function uploadPartCopy(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const number = partNumber(r);
  await r.services.multipart.requireUpload(r.bucket, r.key, uploadId(r));
  const src = await readCopySource(r);
  const m = src.manifest;
  const rangeHeader = r.request.headers.get("x-amz-copy-source-range");
  let start = 0;
  let end = m.size;
  if (rangeHeader !== null) {
    const match = /^bytes=(\d+)-(\d+)$/.exec(rangeHeader.trim());
    if (!match || Number(match[2]) < Number(match[1])) {
      throw new MeshError("InvalidArgument", "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy");
    }
    if (Number(match[2]) >= m.size) throw new MeshError("InvalidRange", `The requested range is not satisfiable: the source object has ${m.size} bytes`);
    [start, end] = [Number(match[1]), Number(match[2]) + 1];
  }
  // The source opens with its own key (SSE-C: the x-amz-copy-source-…-customer-* headers); the part is sealed with the upload's.
  const sourceKey = keyForRead(r.services.objects, m, r.request.headers, "x-amz-copy-source-");
  const bytes = await r.services.objects.readObject(m, start, end, { key: sourceKey });
  try {
    const seen: { kind?: SseKind } = {};
    const part = await r.services.multipart.uploadPart(r.bucket, r.key, uploadId(r), number, bytes, end - start, { seal: partSealer(r, seen) });
    const alg = part.checksum ? (await r.services.multipart.requireUpload(r.bucket, r.key, uploadId(r))).checksum?.algorithm : undefined;
    const sse = sseHeaders(seen.kind, customerKey(r.request.headers));
    return xmlResponse("CopyPartResult", { LastModified: isoDate(part.lastModified), ETag: `"${part.etag}"`, ...(alg && part.checksum ? { [checksumField(alg)]: part.checksum } : {}) }, 200, sse);
  } catch (err) {
    await bytes.cancel(err).catch(() => {});
    throw err;
  }
}

export async function completeMultipartUpload(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const objectChecksum = completeChecksum(r.request.headers);
  const parts = parseCompleteRequest(await smallBody(requestBody(r.request, r.caller, { checksumHeaders: false }), COMPLETE_MAX_BYTES));
  // An upload no longer there may have just been completed: Complete answers a repeat (its progress record is already ended).
  const token = await tokenOf(r).catch((err: unknown) => {
    if (err instanceof MeshError && err.code === "NoSuchUpload") return undefined;
    throw err;
  });
  const m = await r.services.multipart.complete(r.bucket, r.key, uploadId(r), parts, { actor: r.who.accessKeyId, condition: writeCondition(r.request.headers) }, objectChecksum);
  if (token && !m.repeated) await r.services.uploads?.endMultipart(token, uploadId(r), { size: m.size });
  return withToken(
    xmlResponse("CompleteMultipartUploadResult", { Location: `/${r.bucket}/${urlEncodeKey(r.key)}`, Bucket: r.bucket, Key: r.key, ETag: `"${m.etag}"`, ...checksumXml(m.integrity) }, 200, { ...sseHeaders(m.sse), ...(m.versionId !== undefined && { "x-amz-version-id": m.versionId }) }),
    token,
  );
}

export async function abortMultipartUpload(r: S3Request): Promise<Response> {
  await requireAccess(r, "write");
  const token = await tokenOf(r);
  await r.services.multipart.abort(r.bucket, r.key, uploadId(r));
  if (token) await r.services.uploads?.endMultipart(token, uploadId(r), { error: "aborted by the client" });
  return withToken(new Response(null, { status: 204 }), token);
}

const limitParam = (r: S3Request, name: string) => countParam(r.query, name, 1);

export async function listParts(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  const marker = Number(r.query.get("part-number-marker") ?? "0");
  if (!Number.isInteger(marker) || marker < 0) throw new BadRequestError("part-number-marker must be a whole number", "InvalidArgument");
  const limit = limitParam(r, "max-parts");
  const { upload, parts, truncated } = await r.services.multipart.listParts(r.bucket, r.key, uploadId(r), { after: marker || undefined, limit });
  const alg = upload.checksum?.algorithm;
  return xmlResponse("ListPartsResult", {
    Bucket: r.bucket,
    Key: r.key,
    UploadId: upload.uploadId,
    Initiator: OWNER,
    Owner: OWNER,
    StorageClass: "STANDARD",
    PartNumberMarker: marker,
    ...(parts.length ? { NextPartNumberMarker: parts[parts.length - 1].partNumber } : {}),
    MaxParts: limit,
    IsTruncated: truncated,
    ...(upload.checksum ? { ChecksumAlgorithm: upload.checksum.algorithm, ChecksumType: upload.checksum.type } : {}),
    Part: parts.map((p) => ({
      PartNumber: p.partNumber,
      LastModified: isoDate(p.lastModified),
      ETag: `"${p.etag}"`,
      Size: p.size,
      ...(alg && p.checksum ? { [checksumField(alg)]: p.checksum } : {}),
    })),
  });
}

export async function listMultipartUploads(r: S3Request): Promise<Response> {
  await requireAccess(r, "read");
  if (r.query.get("delimiter")) throw new MeshError("NotImplemented", "ListMultipartUploads with a delimiter is not implemented");
  const enc = r.query.get("encoding-type") === "url" ? urlEncodeKey : (s: string) => s;
  const prefix = r.query.get("prefix") ?? "";
  const keyMarker = r.query.get("key-marker") ?? "";
  const idMarker = r.query.get("upload-id-marker") ?? "";
  const limit = limitParam(r, "max-uploads");
  // Uploads are listed by key and upload id, so the markers resume exactly.
  const after = keyMarker ? uploadListKey(keyMarker, idMarker || undefined) : undefined;
  const { uploads, next } = await r.services.multipart.listUploads(r.bucket, { prefix, after, limit });
  const last = uploads[uploads.length - 1];
  return xmlResponse("ListMultipartUploadsResult", {
    Bucket: r.bucket,
    KeyMarker: enc(keyMarker),
    UploadIdMarker: idMarker,
    ...(next !== null && last ? { NextKeyMarker: enc(last.key), NextUploadIdMarker: last.uploadId } : {}),
    Prefix: enc(prefix),
    ...(r.query.get("encoding-type") === "url" ? { EncodingType: "url" } : {}),
    MaxUploads: limit,
    IsTruncated: next !== null,
    Upload: uploads.map((u) => ({ Key: enc(u.key), UploadId: u.uploadId, Initiator: OWNER, Owner: OWNER, StorageClass: "STANDARD", Initiated: isoDate(u.initiated) })),
  });
}
