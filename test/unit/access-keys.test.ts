import { describe, expect, test } from "bun:test";
import { allows, nativeToken, newAccessKeyId, newSecret, validateSpec, type Principal } from "../../src/auth/access-keys.ts";
import { MeshError } from "../../src/errors.ts";

describe("access keys", () => {
  test("permissions nest: owner > write > read, per bucket, with * for every bucket", () => {
    const who: Principal = { accessKeyId: "K", admin: false, buckets: { a: "read", b: "write", c: "owner" } };
    expect([allows(who, "a", "read"), allows(who, "a", "write"), allows(who, "a", "owner")]).toEqual([true, false, false]);
    expect([allows(who, "b", "read"), allows(who, "b", "write"), allows(who, "b", "owner")]).toEqual([true, true, false]);
    expect([allows(who, "c", "read"), allows(who, "c", "write"), allows(who, "c", "owner")]).toEqual([true, true, true]);
    expect(allows(who, "other", "read")).toBe(false);
    const star: Principal = { accessKeyId: "K", admin: false, buckets: { "*": "read", b: "write" } };
    expect([allows(star, "any", "read"), allows(star, "any", "write"), allows(star, "b", "write")]).toEqual([true, false, true]);
    expect(allows({ accessKeyId: "A", admin: true, buckets: {} }, "x", "owner")).toBe(true);
    // Bucket names that are also Object.prototype members are ordinary names.
    for (const name of ["constructor", "toString", "hasownproperty"]) expect(allows(star, name, "read")).toBe(true);
    expect(allows({ accessKeyId: "K", admin: false, buckets: {} }, "constructor", "read")).toBe(false);
  });

  test("ids, secrets and tokens have the documented shapes; tokens depend on the secret", () => {
    for (let i = 0; i < 50; i++) {
      const id = newAccessKeyId();
      expect(id).toMatch(/^MK[A-Z2-7]{18}$/);
      const secret = newSecret();
      expect(secret).toHaveLength(40);
      const token = nativeToken(id, secret);
      expect(token.startsWith(`mst_${id}_`)).toBe(true);
      expect(nativeToken(id, secret + "x")).not.toBe(token);
    }
  });

  test("key specs are validated with plain messages", () => {
    expect(validateSpec({ name: "n", buckets: { photos: "write", "*": "read" } })).toEqual({ name: "n", admin: undefined, buckets: { photos: "write", "*": "read" } });
    for (const bad of [null, [], "x", { buckets: { photos: "all" } }, { buckets: { "Bad Name": "read" } }, { admin: "yes" }, { name: 5 }]) {
      expect(() => validateSpec(bad)).toThrow(MeshError);
    }
  });
});
