// How S3 spells a kept checksum: x-amz-checksum-<alg> / x-amz-checksum-type headers on
// reads (with x-amz-checksum-mode: ENABLED) and Checksum<ALG> / ChecksumType XML fields,
// and which part of a multipart object ?partNumber=N names.
import { BadRequestError, MeshError } from "../../errors.ts";
import type { ObjectIntegrity, ObjectManifest } from "../../metadata/types.ts";
import { MAX_PART_NUMBER } from "../../objects/multipart.ts";
import type { ChecksumAlgorithm } from "../../objects/checksums.ts";

/** The header that carries an `alg` checksum. */
export function checksumHeader(alg: ChecksumAlgorithm): string {
  return `x-amz-checksum-${alg.toLowerCase()}`;
}

/** The XML element that carries an `alg` checksum (ChecksumCRC32, ChecksumCRC64NVME, ...). */
export function checksumField(alg: ChecksumAlgorithm): string {
  return `Checksum${alg}`;
}

/** True if the request asked for checksums (x-amz-checksum-mode: ENABLED). */
export function checksumModeEnabled(h: Headers): boolean {
  return (h.get("x-amz-checksum-mode") ?? "").toUpperCase() === "ENABLED";
}

/** The object's checksum headers (the whole object's; `part` given: that part's, when parts have their own). */
export function checksumHeaders(integrity: ObjectIntegrity | undefined, part?: number): Record<string, string> {
  const c = integrity?.checksum;
  if (!c) return {};
  if (part !== undefined && integrity?.parts) {
    const own = integrity.parts[part - 1]?.checksum;
    return own ? { [checksumHeader(c.algorithm)]: own, "x-amz-checksum-type": c.type } : {};
  }
  return { [checksumHeader(c.algorithm)]: c.value, "x-amz-checksum-type": c.type };
}

/** The object's checksum as XML fields (Complete's result, ListParts' parts), or none. */
export function checksumXml(integrity: ObjectIntegrity | undefined): Record<string, string> {
  const c = integrity?.checksum;
  return c ? { [checksumField(c.algorithm)]: c.value, ChecksumType: c.type } : {};
}

/** ?partNumber=N as a number, or undefined when absent; InvalidArgument unless 1..10000. */
export function partNumberParam(q: URLSearchParams): number | undefined {
  const raw = q.get("partNumber");
  if (raw === null) return undefined;
  const n = Number(raw);
  if (raw === "" || !Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
    throw new BadRequestError(`Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, "InvalidArgument");
  }
  return n;
}

/** How many parts S3 says the object has: a multipart object's, else 1. */
export function partsCount(m: ObjectManifest): number {
  if (m.integrity?.parts) return m.integrity.parts.length;
  const suffix = /-(\d+)$/.exec(m.etag);
  return suffix ? Number(suffix[1]) : 1;
}

/** Bytes [start, end) of part `n` (1-based); a single-part object's part 1 is all of it. 416 InvalidPartNumber past the last part. */
export function partRange(m: ObjectManifest, n: number): [number, number] {
  const parts = m.integrity?.parts;
  if (!parts) {
    // A multipart object completed before part layouts were kept: its boundaries are unknown.
    if (partsCount(m) > 1) throw new MeshError("NotImplemented", "this multipart object was completed before part layouts were kept; read it by Range");
    if (n !== 1) throw new MeshError("InvalidPartNumber", "The requested partnumber is not satisfiable");
    return [0, m.size];
  }
  if (n > parts.length) throw new MeshError("InvalidPartNumber", "The requested partnumber is not satisfiable");
  let start = 0;
  for (let i = 0; i < n - 1; i++) start += parts[i].size;
  return [start, start + parts[n - 1].size];
}
