// S3's flexible checksums as the store keeps them: CRC32, CRC32C, CRC64NVME, SHA-1 and
// SHA-256, a whole object's (FULL_OBJECT) or a multipart object's COMPOSITE (the checksum
// of its parts' checksums, "<base64>-<parts>"). The CRCs come from the AWS SDK's own
// implementations (@aws-sdk/checksums: the same code that computes what clients send, and
// its CRC64NVME is slice-by-8, four times the byte-at-a-time loop this replaced); the SHAs
// from node:crypto. What no library offers is combining CRCs: a FULL_OBJECT multipart
// checksum is the CRC of the parts' bytes in order, found from the part CRCs and sizes
// alone (zlib's crc32_combine, in GF(2) over BigInt so one routine serves 32 and 64 bits).
import crypto from "node:crypto";
import { Crc32, Crc32c, Crc64Nvme } from "@aws-sdk/checksums/crc";

/** The algorithms S3 names, as it spells them (x-amz-checksum-algorithm, ChecksumAlgorithm). */
export const CHECKSUM_ALGORITHMS = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] as const;
/** One of S3's checksum algorithms. */
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
/** A whole object's checksum, or a multipart object's checksum of part checksums. */
export type ChecksumType = "FULL_OBJECT" | "COMPOSITE";

/** An incremental checksum. */
export interface Hasher {
  update(data: Uint8Array): void;
  /** The raw digest (a CRC as its big-endian bytes). */
  digest(): Promise<Uint8Array>;
}

/** `name` ("crc32", "CRC32C", ...) as an algorithm, or undefined if S3 has no such one. */
export function parseAlgorithm(name: string): ChecksumAlgorithm | undefined {
  const upper = name.trim().toUpperCase();
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(upper) ? (upper as ChecksumAlgorithm) : undefined;
}

/** A fresh hasher for `alg`. */
export function hasher(alg: ChecksumAlgorithm): Hasher {
  switch (alg) {
    case "CRC32":
      return new Crc32();
    case "CRC32C":
      return new Crc32c();
    case "CRC64NVME":
      return new Crc64Nvme();
    case "SHA1":
    case "SHA256": {
      const h = crypto.createHash(alg === "SHA1" ? "sha1" : "sha256");
      return { update: (d) => void h.update(d), digest: async () => new Uint8Array(h.digest()) };
    }
  }
}

/** The base64 checksum of `data` (tests and small bodies). */
export async function checksumOf(alg: ChecksumAlgorithm, data: Uint8Array): Promise<string> {
  const h = hasher(alg);
  h.update(data);
  return Buffer.from(await h.digest()).toString("base64");
}

/** The checksum types S3 allows for a multipart upload with `alg`, its default first. */
export function multipartTypes(alg: ChecksumAlgorithm): ChecksumType[] {
  if (alg === "CRC64NVME") return ["FULL_OBJECT"];
  if (alg === "CRC32" || alg === "CRC32C") return ["COMPOSITE", "FULL_OBJECT"];
  return ["COMPOSITE"];
}

/** Bytes in a digest of `alg`. */
export function digestBytes(alg: ChecksumAlgorithm): number {
  return { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 }[alg];
}

/** True if `value` is the base64 of a digest of `alg` (a stored or sent checksum, before it is compared). */
export function isChecksumValue(alg: ChecksumAlgorithm, value: string): boolean {
  return /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, "base64").byteLength === digestBytes(alg) && Buffer.from(value, "base64").toString("base64") === value;
}

// ---------------------------------------------------------------------------
// CRC combination. A reflected CRC register holds a polynomial with x^0 in its top bit.
// For CRCs whose initial value and final xor are both all ones (all three here),
// crc(A || B) = crc(A) * x^(8*len(B)) mod P  xor  crc(B).

interface CrcShape {
  width: bigint;
  /** The reflected polynomial. */
  poly: bigint;
}

const CRC_SHAPES: Partial<Record<ChecksumAlgorithm, CrcShape>> = {
  CRC32: { width: 32n, poly: 0xedb88320n },
  CRC32C: { width: 32n, poly: 0x82f63b78n },
  CRC64NVME: { width: 64n, poly: 0x9a6c9329ac4bc9b5n },
};

/** a * b mod P, both reflected. */
function mulMod(a: bigint, b: bigint, s: CrcShape): bigint {
  let m = 1n << (s.width - 1n);
  let p = 0n;
  while (m > 0n) {
    if (a & m) p ^= b;
    m >>= 1n;
    b = b & 1n ? (b >> 1n) ^ s.poly : b >> 1n;
  }
  return p;
}

/** x^(8n) mod P, reflected: square-and-multiply over the bits of n. */
function shiftBytes(n: number, s: CrcShape): bigint {
  let result = 1n << (s.width - 1n); // x^0
  let power = 1n << (s.width - 9n); // x^8: one byte
  for (let k = BigInt(n); k > 0n; k >>= 1n) {
    if (k & 1n) result = mulMod(result, power, s);
    power = mulMod(power, power, s);
  }
  return result;
}

const toBig = (bytes: Uint8Array) => BigInt("0x" + (Buffer.from(bytes).toString("hex") || "0"));
function fromBig(v: bigint, width: bigint): Uint8Array {
  return new Uint8Array(Buffer.from(v.toString(16).padStart(Number(width / 4n), "0"), "hex"));
}

/** True for the CRC algorithms (the ones whose multipart checksum may be FULL_OBJECT). */
export function isCrc(alg: ChecksumAlgorithm): boolean {
  return CRC_SHAPES[alg] !== undefined;
}

/** The CRC of A || B from crc(A), crc(B) (raw big-endian digests) and B's length in bytes. */
export function combineCrc(alg: ChecksumAlgorithm, crcA: Uint8Array, crcB: Uint8Array, lengthB: number): Uint8Array {
  const s = CRC_SHAPES[alg];
  if (!s) throw new Error(`${alg} is not a CRC`);
  return fromBig(mulMod(shiftBytes(lengthB, s), toBig(crcA), s) ^ toBig(crcB), s.width);
}

/** One part's stored checksum (base64) and size. */
export interface PartSum {
  checksum: string;
  size: number;
}

/** The FULL_OBJECT checksum (base64) of parts in order: their CRCs combined. */
export function fullObjectChecksum(alg: ChecksumAlgorithm, parts: PartSum[]): string {
  let crc: Uint8Array | undefined;
  for (const p of parts) {
    const next = new Uint8Array(Buffer.from(p.checksum, "base64"));
    crc = crc === undefined ? next : combineCrc(alg, crc, next, p.size);
  }
  return Buffer.from(crc ?? new Uint8Array(digestBytes(alg))).toString("base64");
}

/** The COMPOSITE checksum of parts in order: `alg` over their raw digests, base64, then "-<parts>". */
export async function compositeChecksum(alg: ChecksumAlgorithm, partChecksums: string[]): Promise<string> {
  const h = hasher(alg);
  for (const c of partChecksums) h.update(new Uint8Array(Buffer.from(c, "base64")));
  return `${Buffer.from(await h.digest()).toString("base64")}-${partChecksums.length}`;
}

/** A stream's bytes passed through unchanged, with their checksum (base64) readable once the stream has ended. */
export interface MeasuredStream {
  stream: ReadableStream<Uint8Array>;
  /** The checksum, once every byte has passed; undefined before. */
  value(): string | undefined;
}

/** Pass `source` through a hasher for `alg`. */
export function measure(source: ReadableStream<Uint8Array>, alg: ChecksumAlgorithm): MeasuredStream {
  const h = hasher(alg);
  let value: string | undefined;
  const stream = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        h.update(chunk);
        controller.enqueue(chunk);
      },
      async flush() {
        value = Buffer.from(await h.digest()).toString("base64");
      },
    }),
  );
  return { stream, value: () => value };
}
