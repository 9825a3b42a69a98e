// Kept checksums without a cluster: CRC combination and FULL_OBJECT checksums against the
// CRC of the whole (computed by the SDK's implementations, and by independent references
// from the test harness and zlib), COMPOSITE checksums, the multipart rules (which
// algorithm allows which type, part checksums checked at Complete), and ?partNumber ranges.
import { describe, expect, test } from "bun:test";
import crypto from "node:crypto";
import zlib from "node:zlib";
import { checksumOf, combineCrc, compositeChecksum, fullObjectChecksum, isChecksumValue, measure, multipartTypes, parseAlgorithm, CHECKSUM_ALGORITHMS } from "../../src/objects/checksums.ts";
import { completeIntegrity, partChecksum, uploadChecksum } from "../../src/objects/multipart-checksums.ts";
import { partNumberParam, partRange } from "../../src/api/s3/checksum-fields.ts";
import type { ObjectManifest } from "../../src/metadata/types.ts";
import { MeshError } from "../../src/errors.ts";
import { crc32cBase64, crc64nvmeBase64 } from "../harness/s3.ts";
import { seededBytes } from "../harness/random.ts";

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const raw = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b.toString("base64");
};

/** Independent references: zlib, node:crypto, the harness's byte-at-a-time CRC-32C and CRC-64/NVME. */
const REFERENCE = {
  CRC32: (d: Uint8Array) => be32(zlib.crc32(d)),
  CRC32C: crc32cBase64,
  CRC64NVME: crc64nvmeBase64,
  SHA1: (d: Uint8Array) => crypto.createHash("sha1").update(d).digest("base64"),
  SHA256: (d: Uint8Array) => crypto.createHash("sha256").update(d).digest("base64"),
};

const DATA = seededBytes(300_000, 17);

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (err) {
    return err instanceof MeshError ? err.code : String(err);
  }
  return "no error";
}

describe("checksum algorithms", () => {
  test("catalog check values of '123456789' (CRC-32, CRC-32C, CRC-64/NVME) and every algorithm against an independent reference", async () => {
    const nine = new TextEncoder().encode("123456789");
    const hex = async (alg: "CRC32" | "CRC32C" | "CRC64NVME") => Buffer.from(await checksumOf(alg, nine), "base64").toString("hex");
    expect(await hex("CRC32")).toBe("cbf43926");
    expect(await hex("CRC32C")).toBe("e3069283");
    expect(await hex("CRC64NVME")).toBe("ae8b14860a799888");
    for (const alg of CHECKSUM_ALGORITHMS) {
      expect(await checksumOf(alg, DATA)).toBe(REFERENCE[alg](DATA));
      expect(await checksumOf(alg, new Uint8Array(0))).toBe(REFERENCE[alg](new Uint8Array(0)));
      expect(isChecksumValue(alg, REFERENCE[alg](DATA))).toBe(true);
    }
    expect(isChecksumValue("CRC32", REFERENCE.SHA256(DATA))).toBe(false);
    expect(parseAlgorithm("crc64nvme")).toBe("CRC64NVME");
    expect(parseAlgorithm("md5")).toBeUndefined();
  });

  for (const alg of ["CRC32", "CRC32C", "CRC64NVME"] as const) {
    test(`${alg}: combining the CRCs of A and B gives the CRC of A || B, at every split including empty sides`, async () => {
      for (const cut of [0, 1, 7, 4096, 65_537, 299_999, 300_000]) {
        const a = DATA.subarray(0, cut);
        const b = DATA.subarray(cut);
        const combined = combineCrc(alg, raw(await checksumOf(alg, a)), raw(await checksumOf(alg, b)), b.byteLength);
        expect(b64(combined)).toBe(REFERENCE[alg](DATA));
      }
    });

    test(`${alg}: FULL_OBJECT checksum of uneven parts is the CRC of the whole`, async () => {
      const sizes = [100_000, 1, 150_000, 49_999];
      let off = 0;
      const parts = [];
      for (const size of sizes) {
        const p = DATA.subarray(off, off + size);
        off += size;
        parts.push({ checksum: await checksumOf(alg, p), size });
      }
      expect(fullObjectChecksum(alg, parts)).toBe(REFERENCE[alg](DATA));
    });
  }

  test("COMPOSITE: the algorithm over the parts' raw digests, base64, then -<parts>", async () => {
    const parts = [DATA.subarray(0, 120_000), DATA.subarray(120_000, 240_000), DATA.subarray(240_000)];
    for (const alg of CHECKSUM_ALGORITHMS) {
      const sums = parts.map((p) => REFERENCE[alg](p));
      const joined = new Uint8Array(Buffer.concat(sums.map((s) => Buffer.from(s, "base64"))));
      expect(await compositeChecksum(alg, sums)).toBe(`${REFERENCE[alg](joined)}-3`);
    }
    // Fixed vectors (computed once with the SDK's implementations): the composites of the parts "a" and "b".
    const ab = async (alg: "SHA256" | "CRC32" | "CRC64NVME") => compositeChecksum(alg, [await checksumOf(alg, new TextEncoder().encode("a")), await checksumOf(alg, new TextEncoder().encode("b"))]);
    expect(await ab("SHA256")).toBe("5aAf7hTg7VxIcU8iGA8lrYNltT+XefedxKPX6Tlj+Uo=-2");
    expect(await ab("CRC32")).toBe("7pJxdw==-2");
    expect(await ab("CRC64NVME")).toBe("RN/Iwldtr+Y=-2");
  });

  test("measure passes bytes through unchanged and knows their checksum only once they have all passed", async () => {
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        for (let off = 0; off < DATA.byteLength; off += 65_536) c.enqueue(DATA.slice(off, off + 65_536));
        c.close();
      },
    });
    const m = measure(source, "CRC64NVME");
    expect(m.value()).toBeUndefined();
    const got = new Uint8Array(await new Response(m.stream).arrayBuffer());
    expect(Buffer.from(got).equals(Buffer.from(DATA))).toBe(true);
    expect(m.value()).toBe(REFERENCE.CRC64NVME(DATA));
  });
});

describe("multipart checksum rules", () => {
  test("which types each algorithm allows (defaults first) and CreateMultipartUpload's refusals", async () => {
    expect(multipartTypes("CRC32")).toEqual(["COMPOSITE", "FULL_OBJECT"]);
    expect(multipartTypes("CRC64NVME")).toEqual(["FULL_OBJECT"]);
    expect(multipartTypes("SHA1")).toEqual(["COMPOSITE"]);
    expect(uploadChecksum("CRC64NVME", undefined)).toEqual({ algorithm: "CRC64NVME", type: "FULL_OBJECT" });
    expect(uploadChecksum("CRC32C", "full_object")).toEqual({ algorithm: "CRC32C", type: "FULL_OBJECT" });
    expect(uploadChecksum(undefined, undefined)).toBeUndefined();
    expect(await errorOf(() => uploadChecksum("SHA256", "FULL_OBJECT"))).toBe("InvalidRequest");
    expect(await errorOf(() => uploadChecksum("CRC64NVME", "COMPOSITE"))).toBe("InvalidRequest");
    expect(await errorOf(() => uploadChecksum(undefined, "COMPOSITE"))).toBe("InvalidRequest");
  });

  test("a part: the client's checksum of the upload's algorithm is kept, another algorithm is refused before any byte is read, none is computed", async () => {
    const upload = { algorithm: "CRC32C" as const, type: "COMPOSITE" as const };
    const body = () => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(DATA), c.close()) });
    const sent = partChecksum(upload, body(), { declared: "CRC32C", checksum: () => ({ algorithm: "CRC32C", value: "client" }) });
    expect(sent.value()).toBe("client");
    expect(await errorOf(() => partChecksum(upload, body(), { declared: "SHA256", checksum: () => undefined }))).toBe("InvalidRequest");
    const computed = partChecksum(upload, body(), undefined);
    await new Response(computed.body).arrayBuffer();
    expect(computed.value()).toBe(REFERENCE.CRC32C(DATA));
    expect(partChecksum(undefined, null, undefined).value()).toBeUndefined();
  });

  test("Complete: listed part checksums are checked, COMPOSITE needs every one, a whole-object checksum or type sent must agree", async () => {
    const p1 = DATA.subarray(0, 200_000);
    const p2 = DATA.subarray(200_000);
    const chosen = (alg: keyof typeof REFERENCE) => [
      { partNumber: 1, size: p1.byteLength, checksum: REFERENCE[alg](p1) },
      { partNumber: 3, size: p2.byteLength, checksum: REFERENCE[alg](p2) },
    ];
    const composite = { algorithm: "SHA1" as const, type: "COMPOSITE" as const };
    const listed = chosen("SHA1").map((p) => ({ SHA1: p.checksum }));
    const ok = await completeIntegrity(composite, chosen("SHA1"), { parts: listed });
    expect(ok.checksum).toEqual({ algorithm: "SHA1", type: "COMPOSITE", value: await compositeChecksum("SHA1", listed.map((l) => l.SHA1)) });
    expect(ok.parts).toEqual(chosen("SHA1").map((p) => ({ size: p.size, checksum: p.checksum })));
    expect(await errorOf(completeIntegrity(composite, chosen("SHA1"), { parts: [listed[0], { SHA1: listed[0].SHA1 }] }))).toBe("InvalidPart");
    expect(await errorOf(completeIntegrity(composite, chosen("SHA1"), { parts: [listed[0], {}] }))).toBe("InvalidRequest");
    expect(await errorOf(completeIntegrity(composite, chosen("SHA1"), { parts: [listed[0], { SHA256: "x" }] }))).toBe("InvalidRequest");
    expect(await errorOf(completeIntegrity(composite, chosen("SHA1"), { parts: listed, type: "FULL_OBJECT" }))).toBe("InvalidRequest");

    const full = { algorithm: "CRC64NVME" as const, type: "FULL_OBJECT" as const };
    // FULL_OBJECT: part checksums may be left out of the request; the object's is the CRC of the whole.
    const whole = await completeIntegrity(full, chosen("CRC64NVME"), { parts: [{}, {}], object: { algorithm: "CRC64NVME", value: REFERENCE.CRC64NVME(DATA) } });
    expect(whole.checksum).toEqual({ algorithm: "CRC64NVME", type: "FULL_OBJECT", value: REFERENCE.CRC64NVME(DATA) });
    expect(await errorOf(completeIntegrity(full, chosen("CRC64NVME"), { parts: [{}, {}], object: { algorithm: "CRC64NVME", value: REFERENCE.CRC64NVME(p1) } }))).toBe("BadDigest");

    // No algorithm: only the layout is kept, and a checksum in the request is refused.
    expect(await completeIntegrity(undefined, chosen("CRC32"), { parts: [{}, {}] })).toEqual({ parts: [{ size: p1.byteLength }, { size: p2.byteLength }] });
    expect(await errorOf(completeIntegrity(undefined, chosen("CRC32"), { parts: [{}, {}], object: { algorithm: "CRC32", value: "x" } }))).toBe("InvalidRequest");
  });
});

describe("?partNumber", () => {
  const manifest = (over: Partial<ObjectManifest>): ObjectManifest => ({ size: 100, etag: "e", contentType: "x", meta: {}, lastModified: 0, chunkSize: 1, chunks: [], ...over });

  test("a multipart object's part N is its bytes; a single-part object's part 1 is all of it; past the end is 416 InvalidPartNumber", async () => {
    const multi = manifest({ size: 60, etag: "e-3", integrity: { parts: [{ size: 10 }, { size: 30 }, { size: 20 }] } });
    expect(partRange(multi, 1)).toEqual([0, 10]);
    expect(partRange(multi, 2)).toEqual([10, 40]);
    expect(partRange(multi, 3)).toEqual([40, 60]);
    expect(await errorOf(() => partRange(multi, 4))).toBe("InvalidPartNumber");
    expect(partRange(manifest({}), 1)).toEqual([0, 100]);
    expect(await errorOf(() => partRange(manifest({}), 2))).toBe("InvalidPartNumber");
    // Completed before layouts were kept: the boundaries are unknown, so no guess.
    expect(await errorOf(() => partRange(manifest({ etag: "e-2" }), 1))).toBe("NotImplemented");
  });

  test("partNumber must be an integer 1..10000", async () => {
    const q = (v: string) => new URLSearchParams({ partNumber: v });
    expect(partNumberParam(new URLSearchParams())).toBeUndefined();
    expect(partNumberParam(q("10000"))).toBe(10_000);
    for (const bad of ["0", "10001", "1.5", "x", "", "-1"]) expect(await errorOf(() => partNumberParam(q(bad)))).toBe("InvalidArgument");
  });
});
