// Write preconditions (src/objects/conditions.ts) and how both APIs read them from headers
// (src/api/write-conditions.ts): what holds, what is 412 or 404, what is refused before any
// body is read.
import { expect, test } from "bun:test";
import { conditionFailure, isConditional } from "../../src/objects/conditions.ts";
import { deleteCondition, deleteHeaders, writeCondition } from "../../src/api/write-conditions.ts";
import type { ObjectManifest } from "../../src/metadata/types.ts";

const m = (over: Partial<ObjectManifest> = {}): ObjectManifest =>
  ({ size: 5, etag: "abc", contentType: "text/plain", meta: {}, lastModified: 1_700_000_000_123, chunkSize: 0, chunks: [], ...over }) as ObjectManifest;
const code = (e: Error | undefined) => (e as { code?: string } | undefined)?.code;

test("If-None-Match: * holds only on no object; If-Match and its kin need the very object", () => {
  expect(conditionFailure({ ifNoneMatch: "*" }, null, "k")).toBeUndefined();
  expect(code(conditionFailure({ ifNoneMatch: "*" }, m(), "k"))).toBe("PreconditionFailed");
  expect(code(conditionFailure({ ifMatch: "abc" }, null, "k"))).toBe("NoSuchKey");
  expect(conditionFailure({ ifMatch: "abc" }, m(), "k")).toBeUndefined();
  expect(conditionFailure({ ifMatch: "*" }, m(), "k")).toBeUndefined();
  expect(code(conditionFailure({ ifMatch: "abd" }, m(), "k"))).toBe("PreconditionFailed");
  expect(code(conditionFailure({ ifMatchSize: 4 }, m(), "k"))).toBe("PreconditionFailed");
  // Last-Modified to the second (the header's precision), or to the millisecond (internal).
  expect(conditionFailure({ ifMatchLastModified: 1_700_000_000_999 }, m(), "k")).toBeUndefined();
  expect(code(conditionFailure({ ifLastModifiedMs: 1_700_000_000_999 }, m(), "k"))).toBe("PreconditionFailed");
  // Tags exactly, in any order (a lifecycle rule by tag deletes only what is still so tagged).
  expect(conditionFailure({ ifTags: { b: "2", a: "1" } }, m({ tags: { a: "1", b: "2" } }), "k")).toBeUndefined();
  expect(conditionFailure({ ifTags: {} }, m(), "k")).toBeUndefined();
  expect(code(conditionFailure({ ifTags: {} }, m({ tags: { a: "1" } }), "k"))).toBe("PreconditionFailed");
  expect(isConditional({})).toBe(false);
  expect(isConditional(undefined)).toBe(false);
  expect(isConditional({ ifTags: {} })).toBe(true);
});

test("headers: ETags unquoted, only * for If-None-Match, bad sizes and dates refused", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  expect(writeCondition(h({}))).toBeUndefined();
  expect(writeCondition(h({ "if-none-match": "*" }))).toEqual({ ifNoneMatch: "*" });
  expect(writeCondition(h({ "if-match": '"ABC"' }))).toEqual({ ifMatch: "abc" });
  expect(() => writeCondition(h({ "if-none-match": '"abc"' }))).toThrow(/only \*/);
  expect(() => writeCondition(h({ "if-none-match": "*", "if-match": "x" }))).toThrow(/not implemented/);
  expect(() => writeCondition(h({ "if-match": " " }))).toThrow(/ETag/);
  expect(deleteHeaders(h({ "if-match": '"e"', "x-amz-if-match-size": "5", "x-amz-if-match-last-modified-time": "Tue, 14 Nov 2023 22:13:20 GMT" }))).toEqual({
    ifMatch: "e",
    ifMatchSize: 5,
    ifMatchLastModified: Date.parse("Tue, 14 Nov 2023 22:13:20 GMT"),
  });
  expect(() => deleteCondition({ size: "-1" })).toThrow(/whole number/);
  expect(() => deleteCondition({ size: "1e3" })).toThrow(/whole number/);
  expect(() => deleteCondition({ lastModified: "yesterday" })).toThrow(/date/);
  expect(deleteCondition({})).toBeUndefined();
});
