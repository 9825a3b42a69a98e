// S3's SSE request headers (src/api/s3/sse.ts): what a write asks for, every malformed or
// KMS request refused with S3's code, and nothing SSE-related let through unread.
import { describe, expect, test } from "bun:test";
import { createHash, randomBytes } from "node:crypto";
import { MeshError } from "../../src/errors.ts";
import { customerKey, requestedSse, sseHeaders } from "../../src/api/s3/sse.ts";

const key = randomBytes(32);
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("base64");
const sseC = (k: Uint8Array = key, prefix = "x-amz-") => ({
  [`${prefix}server-side-encryption-customer-algorithm`]: "AES256",
  [`${prefix}server-side-encryption-customer-key`]: Buffer.from(k).toString("base64"),
  [`${prefix}server-side-encryption-customer-key-md5`]: md5(k),
});

/** The code a parse throws, or "ok". */
function codeOf(f: () => unknown): string {
  try {
    f();
    return "ok";
  } catch (err) {
    return err instanceof MeshError ? err.code : String(err);
  }
}

describe("SSE request headers", () => {
  test("AES256 asks for SSE-S3; nothing asks for nothing", () => {
    expect(requestedSse(new Headers({ "x-amz-server-side-encryption": "AES256" }))).toEqual({ kind: "S3" });
    expect(requestedSse(new Headers({}))).toBeNull();
    expect(requestedSse(new Headers({ "x-amz-server-side-encryption-bucket-key-enabled": "false" }))).toBeNull();
  });

  test("a customer key is read with its MD5 checked", () => {
    const got = requestedSse(new Headers(sseC()));
    expect(got?.kind).toBe("C");
    expect(got?.kind === "C" && Buffer.from(got.customer.key).equals(key)).toBe(true);
    expect(customerKey(new Headers(sseC(key, "x-amz-copy-source-")), "x-amz-copy-source-")?.md5).toBe(md5(key));
    expect(customerKey(new Headers(sseC(key, "x-amz-copy-source-")))).toBeNull();
  });

  test("KMS in any form answers NotImplemented", () => {
    const kms: Array<Record<string, string>> = [
      { "x-amz-server-side-encryption": "aws:kms" },
      { "x-amz-server-side-encryption": "aws:kms:dsse" },
      { "x-amz-server-side-encryption-aws-kms-key-id": "arn:aws:kms:us-east-1:1:key/x" },
      { "x-amz-server-side-encryption-context": "e30=" },
      { "x-amz-server-side-encryption": "AES256", "x-amz-server-side-encryption-bucket-key-enabled": "true" },
    ];
    for (const h of kms) {
      expect(`${JSON.stringify(h)}: ${codeOf(() => requestedSse(new Headers(h)))}`).toBe(`${JSON.stringify(h)}: NotImplemented`);
    }
  });

  test("malformed SSE and SSE-C headers are refused as S3 refuses them", () => {
    const base = sseC();
    const cases: Array<[Record<string, string>, string]> = [
      [{ "x-amz-server-side-encryption": "DES" }, "InvalidArgument"],
      [{ ...base, "x-amz-server-side-encryption-customer-key-md5": md5(randomBytes(32)) }, "InvalidArgument"],
      [{ ...base, "x-amz-server-side-encryption-customer-algorithm": "AES128" }, "InvalidEncryptionAlgorithmError"],
      [{ ...sseC(randomBytes(16)) }, "InvalidArgument"],
      [{ ...base, "x-amz-server-side-encryption-customer-key": "not base64!!" }, "InvalidArgument"],
      [{ "x-amz-server-side-encryption-customer-algorithm": "AES256" }, "InvalidArgument"],
      [{ "x-amz-server-side-encryption-customer-key": base["x-amz-server-side-encryption-customer-key"] }, "InvalidArgument"],
      [{ ...base, "x-amz-server-side-encryption": "AES256" }, "InvalidArgument"],
    ];
    for (const [h, code] of cases) expect(`${JSON.stringify(Object.keys(h))}: ${codeOf(() => requestedSse(new Headers(h)))}`).toBe(`${JSON.stringify(Object.keys(h))}: ${code}`);
  });

  test("the refusal messages never carry the key", () => {
    const bad = { ...sseC(), "x-amz-server-side-encryption-customer-key-md5": md5(randomBytes(32)) };
    let message = "";
    try {
      requestedSse(new Headers(bad));
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("MD5");
    expect(message.includes(key.toString("base64"))).toBe(false);
  });

  test("response headers name the kind, and SSE-C echoes the key's MD5", () => {
    expect(sseHeaders("S3")).toEqual({ "x-amz-server-side-encryption": "AES256" });
    expect(sseHeaders(undefined)).toEqual({});
    expect(sseHeaders("C", { key, md5: md5(key) })).toEqual({
      "x-amz-server-side-encryption-customer-algorithm": "AES256",
      "x-amz-server-side-encryption-customer-key-md5": md5(key),
    });
  });
});
