// Headers an object keeps from its upload and sends back on every download, shared by
// the native and S3 APIs so that an object looks the same through either.
import { BadRequestError } from "../errors.ts";
import type { ObjectManifest } from "../metadata/types.ts";

/** Request headers stored with an object and returned as they were sent. */
export const STORED_HEADERS = ["cache-control", "content-disposition", "content-encoding", "content-language", "expires"] as const;

/** S3's limit on user metadata (names and values together). */
export const MAX_META_BYTES = 2048;

/** The stored headers of an upload; `aws-chunked` is transfer framing, not the object's encoding. */
export function storedHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    let value = headers.get(name);
    if (name === "content-encoding" && value !== null) {
      value = value.split(",").map((v) => v.trim()).filter((v) => v && v.toLowerCase() !== "aws-chunked").join(", ");
    }
    if (value) out[name] = value;
  }
  return out;
}

/** User metadata from headers starting with `prefix` (`x-meta-` or `x-amz-meta-`). */
export function userMeta(headers: Headers, prefix: string): Record<string, string> {
  const meta: Record<string, string> = {};
  let bytes = 0;
  headers.forEach((value, name) => {
    if (!name.startsWith(prefix)) return;
    const k = name.slice(prefix.length);
    meta[k] = value;
    bytes += k.length + value.length;
  });
  if (bytes > MAX_META_BYTES) throw new BadRequestError(`user metadata is ${bytes} bytes; the limit is ${MAX_META_BYTES}`, "MetadataTooLarge");
  return meta;
}

/** Response headers of an object: ETag, type, dates, stored headers and user metadata under `metaPrefix`. */
export function objectHeaders(m: ObjectManifest, metaPrefix: string): Record<string, string> {
  const h: Record<string, string> = {
    etag: `"${m.etag}"`,
    "content-type": m.contentType,
    "last-modified": new Date(m.lastModified).toUTCString(),
    "accept-ranges": "bytes",
    ...m.headers,
  };
  for (const [k, v] of Object.entries(m.meta)) h[metaPrefix + k] = v;
  return h;
}
