// How index rows are named (src/metadata/keys.ts): a key is found again from its row
// whatever it holds (NULs included), and rows sort the way listings resume.
import { describe, expect, test } from "bun:test";
import {
  compareKeys,
  keyOfUploadRow,
  objectRow,
  objectRowPrefix,
  partRowPrefix,
  partRowSuffix,
  uploadListKey,
  uploadPartsPrefix,
  uploadRow,
  uploadRowPrefix,
} from "../../src/metadata/keys.ts";

const KEYS = ["plain", "a/\u0000nul-key", "\u0000", "ends-with-nul\u0000", "two\u0000\u0000nuls", "日本語/🎉"];
const ID = "0123456789abcdef0123456789abcdef";

describe("row names", () => {
  test("a manifest row is the bucket's prefix and the key", () => {
    for (const key of KEYS) expect(objectRow("bkt", key)).toBe(objectRowPrefix("bkt") + key);
    // No bucket's rows start with another bucket's prefix (names cannot hold NUL).
    expect(objectRow("ab", "c").startsWith(objectRowPrefix("a"))).toBe(false);
  });

  test("upload and part rows give back their object key, NULs included", () => {
    for (const key of KEYS) {
      expect(keyOfUploadRow(uploadRow("bkt", key, ID).slice(uploadRowPrefix("bkt").length), "upload")).toBe(key);
      const part = uploadPartsPrefix("bkt", key, ID) + partRowSuffix(7);
      expect(part.startsWith(partRowPrefix("bkt"))).toBe(true);
      expect(keyOfUploadRow(part.slice(partRowPrefix("bkt").length), "part")).toBe(key);
    }
  });

  test("part rows sort by part number, and a key-marker alone resumes after every upload of that key", () => {
    const parts = [1, 2, 9, 10, 100, 10_000].map(partRowSuffix);
    expect([...parts].sort(compareKeys)).toEqual(parts);
    for (const key of KEYS) {
      expect(compareKeys(uploadListKey(key, ID), uploadListKey(key))).toBeLessThan(0);
      expect(compareKeys(uploadListKey(key), uploadListKey(key + "a", ID))).toBeLessThan(0);
    }
  });
});
