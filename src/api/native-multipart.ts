// What the native API's multipart routes need beside their handlers (native.ts): the
// object key from the `key` query parameter, a part's required Content-Length, and every
// part of an upload read a bounded page at a time. The uploads themselves are the same
// service S3 uses (src/objects/multipart.ts), so both APIs see the same uploads and rules.
import { BadRequestError, MeshError } from "../errors.ts";
import { decodePathPiece, validateKey } from "../metadata/keys.ts";
import { MAX_PART_NUMBER, type Multipart } from "../objects/multipart.ts";

/** What the native API needs from multipart uploads. */
export type NativeMultipart = Pick<Multipart, "create" | "uploadPart" | "listParts" | "complete" | "abort" | "requireUpload" | "listUploads">;

/** A part as the native API shows it. */
export interface ListedPart {
  partNumber: number;
  etag: string;
  size: number;
}

/** Parts read per page when listing an upload's parts. */
const PARTS_PAGE = 1000;

/**
 * The object key of a multipart route: its `key` query parameter, given once, decoded
 * strictly from the raw URL ('+' is a space, as in any form-encoded query; bytes that are
 * not UTF-8 are 400 InvalidURI rather than a key with U+FFFD in it).
 */
export function keyParam(url: string): string {
  const q = url.indexOf("?");
  const found = q < 0 ? [] : url.slice(q + 1).split("&").filter((p) => p.startsWith("key="));
  if (found.length !== 1) throw new BadRequestError(found.length ? "give the key query parameter once" : "the key query parameter is required", "InvalidArgument");
  const key = decodePathPiece(found[0].slice("key=".length).replace(/\+/g, " "));
  validateKey(key);
  return key;
}

/** A part's declared length: required, as S3's UploadPart requires it (the body is then checked against it). */
export function partLength(headers: Headers): number {
  const declared = headers.get("content-length");
  if (declared === null) throw new MeshError("MissingContentLength", "a part needs a Content-Length header");
  const n = Number(declared);
  if (!(Number.isInteger(n) && n >= 0)) throw new BadRequestError("invalid Content-Length", "InvalidArgument");
  return n;
}

/** Every part of an upload in part order, read PARTS_PAGE at a time (at most MAX_PART_NUMBER exist). */
export async function listAllParts(multipart: NativeMultipart, bucket: string, key: string, uploadId: string): Promise<ListedPart[]> {
  const parts: ListedPart[] = [];
  let after: number | undefined;
  for (let page = 0; page <= MAX_PART_NUMBER / PARTS_PAGE; page++) {
    const got = await multipart.listParts(bucket, key, uploadId, { after, limit: PARTS_PAGE });
    for (const p of got.parts) parts.push({ partNumber: p.partNumber, etag: p.etag, size: p.size });
    const last = got.parts.at(-1);
    if (!got.truncated || !last) break;
    after = last.partNumber;
  }
  return parts;
}
