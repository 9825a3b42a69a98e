// GetObjectAttributes (GET /bucket/key?attributes): what HeadObject and ListParts would
// tell, in one XML document, for the attributes named in x-amz-object-attributes: ETag
// (unquoted, as S3 sends it here), Checksum, ObjectParts (paged by x-amz-max-parts and
// x-amz-part-number-marker), StorageClass and ObjectSize.
import { requirePermission } from "../../auth/guard.ts";
import { BadRequestError } from "../../errors.ts";
import type { ObjectManifest } from "../../metadata/types.ts";
import { checksumField, partsCount } from "./checksum-fields.ts";
import type { S3Request } from "./context.ts";
import { xmlResponse } from "./xml.ts";

const ATTRIBUTES = new Set(["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]);

/** The attributes asked for; InvalidArgument if none or one S3 does not know. */
function wantedAttributes(h: Headers): Set<string> {
  const names = (h.get("x-amz-object-attributes") ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new BadRequestError("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty", "InvalidArgument");
  for (const n of names) if (!ATTRIBUTES.has(n)) throw new BadRequestError(`Invalid attribute name specified: ${n.slice(0, 64)}`, "InvalidArgument");
  return new Set(names);
}

/** A whole-number header, `fallback` when absent; InvalidArgument otherwise. */
function countHeader(h: Headers, name: string, fallback: number): number {
  const v = h.get(name);
  if (v === null || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new BadRequestError(`${name} must be a non-negative integer`, "InvalidArgument");
  return n;
}

/** The ObjectParts block of a multipart object (a single-part object has none). */
function objectParts(m: ObjectManifest, h: Headers): Record<string, unknown> | undefined {
  const count = partsCount(m);
  if (count <= 1 && !m.integrity?.parts) return undefined;
  const max = Math.min(countHeader(h, "x-amz-max-parts", 1000), 1000);
  const marker = countHeader(h, "x-amz-part-number-marker", 0);
  const parts = m.integrity?.parts ?? [];
  const alg = m.integrity?.checksum?.algorithm;
  // S3 lists parts only when they have checksums of their own.
  const listed = alg && parts.some((p) => p.checksum)
    ? parts.map((p, i) => ({ number: i + 1, ...p })).filter((p) => p.number > marker)
    : [];
  const page = listed.slice(0, max);
  const truncated = listed.length > page.length;
  return {
    PartsCount: count,
    PartNumberMarker: marker,
    ...(page.length ? { NextPartNumberMarker: page[page.length - 1].number } : {}),
    MaxParts: max,
    IsTruncated: truncated,
    Part: page.map((p) => ({ PartNumber: p.number, Size: p.size, ...(alg && p.checksum ? { [checksumField(alg)]: p.checksum } : {}) })),
  };
}

/** GetObjectAttributes. */
export async function getObjectAttributes(r: S3Request): Promise<Response> {
  requirePermission(r.who, r.bucket, "read");
  const versionId = r.query.get("versionId") ?? undefined;
  const wanted = wantedAttributes(r.request.headers);
  const m = await r.services.objects.headObject(r.bucket, r.key, { signal: r.request.signal, versionId });
  const c = m.integrity?.checksum;
  const parts = wanted.has("ObjectParts") ? objectParts(m, r.request.headers) : undefined;
  return xmlResponse(
    "GetObjectAttributesResponse",
    {
      ...(wanted.has("ETag") ? { ETag: m.etag } : {}),
      // A composite checksum is sent here without its "-<parts>" suffix (the parts are in ObjectParts).
      ...(wanted.has("Checksum") && c ? { Checksum: { [checksumField(c.algorithm)]: c.value.replace(/-\d+$/, ""), ChecksumType: c.type } } : {}),
      ...(parts ? { ObjectParts: parts } : {}),
      ...(wanted.has("StorageClass") ? { StorageClass: "STANDARD" } : {}),
      ...(wanted.has("ObjectSize") ? { ObjectSize: m.size } : {}),
    },
    200,
    { "last-modified": new Date(m.lastModified).toUTCString(), "x-amz-version-id": m.versionId ?? "null" },
  );
}
