// The SSE sealing format (src/objects/sse-seal.ts): a sealed chunk opens only as the chunk
// it was, in the place it was, of the object it was; a flipped bit, a swapped or moved chunk,
// another object's chunk and another mesh's key are all refused. SSE-C data keys open only
// with the customer key they were wrapped by, and nothing stored holds that key.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chunkPlaces, createSseKeyring, open, seal, SEAL_OVERHEAD, WrongKeyError } from "../../src/objects/sse-seal.ts";

const mesh = randomBytes(32);
const ring = createSseKeyring(mesh);
const text = (b: Uint8Array | null) => (b ? Buffer.from(b).toString() : null);

describe("sealed chunks", () => {
  test("a chunk opens as itself, in its place, and is SEAL_OVERHEAD bytes longer", () => {
    const k = ring.create("S3");
    const plain = Buffer.from("the quick brown fox");
    const sealed = k.sealChunk(plain, 0, 3);
    expect(sealed.byteLength).toBe(plain.byteLength + SEAL_OVERHEAD);
    expect(Buffer.from(sealed).includes(plain)).toBe(false);
    expect(text(k.openChunk(sealed, 0, 3))).toBe("the quick brown fox");
    // Two seals of the same bytes differ (random nonce): equal chunks are not visible as equal.
    expect(Buffer.from(k.sealChunk(plain, 0, 3)).equals(Buffer.from(sealed))).toBe(false);
  });

  test("every flipped bit is refused", () => {
    const k = ring.create("S3");
    const sealed = k.sealChunk(Buffer.from("tamper me, if you can"), 0, 0);
    for (let i = 0; i < sealed.byteLength; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i] ^= 1 << i % 8;
      expect(k.openChunk(bad, 0, 0)).toBeNull();
    }
    expect(k.openChunk(sealed.subarray(0, sealed.byteLength - 1), 0, 0)).toBeNull();
    expect(k.openChunk(new Uint8Array(3), 0, 0)).toBeNull();
  });

  test("a chunk moved to another index or part, or swapped with another, does not open", () => {
    const k = ring.create("S3");
    const a = k.sealChunk(Buffer.from("chunk zero"), 0, 0);
    const b = k.sealChunk(Buffer.from("chunk one"), 0, 1);
    expect(k.openChunk(a, 0, 1)).toBeNull();
    expect(k.openChunk(b, 0, 0)).toBeNull();
    const p = k.sealChunk(Buffer.from("part 2 chunk 0"), 2, 0);
    expect(k.openChunk(p, 3, 0)).toBeNull();
    expect(k.openChunk(p, 0, 0)).toBeNull();
    expect(text(k.openChunk(p, 2, 0))).toBe("part 2 chunk 0");
  });

  test("another object's chunk does not open, even in the same place", () => {
    const one = ring.create("S3");
    const two = ring.create("S3");
    expect(two.openChunk(one.sealChunk(Buffer.from("x"), 0, 0), 0, 0)).toBeNull();
    // Same data key, another object id: still refused (the id is in the associated data).
    const key = randomBytes(32);
    expect(open(key, seal(key, Buffer.from("x"), Buffer.from("aad-1")), Buffer.from("aad-2"))).toBeNull();
  });

  test("chunk places follow the parts of a multipart object", () => {
    const info = { ...ring.create("S3").info, parts: [[1, 2], [3, 1]] as Array<[number, number]> };
    expect(chunkPlaces(info, 3)).toEqual([[1, 0], [1, 1], [3, 0]]);
    expect(chunkPlaces(ring.create("S3").info, 2)).toEqual([[0, 0], [0, 1]]);
  });
});

describe("data keys", () => {
  test("an SSE-S3 key is reopened from its manifest record by the same mesh only", () => {
    const k = ring.create("S3");
    const sealed = k.sealChunk(Buffer.from("mesh wide"), 0, 0);
    const again = createSseKeyring(mesh).open(JSON.parse(JSON.stringify(k.info)));
    expect(text(again.openChunk(sealed, 0, 0))).toBe("mesh wide");
    expect(() => createSseKeyring(randomBytes(32)).open(k.info)).toThrow(WrongKeyError);
    expect(k.etag("0123456789abcdef0123456789abcdef")).toBe("0123456789abcdef0123456789abcdef");
  });

  test("an SSE-C key opens with its customer key only, and the record holds no trace of it", () => {
    const customer = randomBytes(32);
    const k = ring.create("C", customer);
    const record = JSON.stringify(k.info);
    expect(record.includes(customer.toString("base64"))).toBe(false);
    expect(record.includes(customer.toString("base64url"))).toBe(false);
    expect(record.includes(customer.toString("hex"))).toBe(false);
    const sealed = k.sealChunk(Buffer.from("customer data"), 0, 0);
    expect(text(ring.open(k.info, customer).openChunk(sealed, 0, 0))).toBe("customer data");
    expect(() => ring.open(k.info, randomBytes(32))).toThrow(WrongKeyError);
    expect(() => ring.open(k.info)).toThrow(WrongKeyError);
    // The wrap names its object: the wrapped key moved onto another object's record does not open.
    const other = ring.create("C", customer);
    expect(() => ring.open({ ...other.info, wrapped: k.info.wrapped }, customer)).toThrow(WrongKeyError);
    // An SSE-C ETag is not the plaintext's MD5, but is stable for the object.
    const md5 = "0123456789abcdef0123456789abcdef";
    expect(k.etag(md5)).not.toBe(md5);
    expect(k.etag(md5)).toMatch(/^[0-9a-f]{32}$/);
    expect(ring.open(k.info, customer).etag(md5)).toBe(k.etag(md5));
  });

  test("the kind is bound to the wrapped key: an SSE-C record relabelled SSE-S3 does not open", () => {
    const k = ring.create("C", randomBytes(32));
    expect(() => ring.open({ ...k.info, kind: "S3" })).toThrow(WrongKeyError);
  });
});
