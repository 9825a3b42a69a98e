// A bucket's search schema (src/search/schema.ts): what a schema may hold, and how one
// object's user metadata parses against it. Every refusal is a 400 InvalidArgument whose
// message names the field and the reason.
import { describe, expect, test } from "bun:test";
import { MeshError } from "../../src/errors.ts";
import { fieldType, MAX_FIELDS, parseDate, parseMetadata, validateSchema, type BucketSchema } from "../../src/search/schema.ts";

/** The MeshError `fn` throws (fails the test if it throws nothing or something else). */
function errorOf(fn: () => unknown): MeshError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MeshError);
    return err as MeshError;
  }
  throw new Error("expected a MeshError, nothing was thrown");
}

const schema: BucketSchema = validateSchema({ fields: { year: "number", released: "date", title: "string", draft: "bool", tags: "keywords" } });

describe("validateSchema", () => {
  test("a schema of the five types comes back as given", () => {
    expect(schema).toEqual({ fields: { year: "number", released: "date", title: "string", draft: "bool", tags: "keywords" } });
    const most = Object.fromEntries(Array.from({ length: MAX_FIELDS }, (_, i) => [`f-${i}_x`, "number"]));
    expect(Object.keys(validateSchema({ fields: most }).fields)).toHaveLength(32);
    expect(validateSchema({ fields: { ["a".repeat(64)]: "bool" } }).fields).toEqual({ ["a".repeat(64)]: "bool" });
  });

  test("refusals name what is wrong", () => {
    const cases: Array<[unknown, string]> = [
      [null, "a schema is an object"],
      [[], "a schema is an object"],
      [{}, 'needs "fields"'],
      [{ fields: [] }, 'needs "fields"'],
      [{ fields: {}, extra: 1 }, 'unknown schema property "extra"'],
      [{ fields: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, "string"])) }, "at most 32 fields; this one has 33"],
      [{ fields: { Year: "number" } }, 'invalid field name "Year"'],
      [{ fields: { "a.b": "number" } }, 'invalid field name "a.b"'],
      [{ fields: { "": "number" } }, 'invalid field name ""'],
      [{ fields: { ["a".repeat(65)]: "number" } }, "invalid field name"],
      [{ fields: { key: "string" } }, 'field name "key" is reserved'],
      [{ fields: { size: "number" } }, 'field name "size" is reserved'],
      [{ fields: { etag: "string" } }, 'field name "etag" is reserved'],
      [{ fields: { lastModified: "date" } }, 'field name "lastModified" is reserved'],
      [{ fields: { lastmodified: "date" } }, 'field name "lastmodified" is reserved'],
      [{ fields: { contenttype: "string" } }, 'field name "contenttype" is reserved'],
      [{ fields: { year: "integer" } }, 'field "year" has type "integer"; the types are number, date, string, bool, keywords'],
      [{ fields: { year: 1 } }, 'field "year" has type 1'],
    ];
    for (const [raw, message] of cases) {
      const err = errorOf(() => validateSchema(raw));
      expect([err.code, err.status]).toEqual(["InvalidArgument", 400]);
      expect(err.message).toContain(message);
    }
  });

  test('a field named "__proto__" is a field like any other, not the prototype', () => {
    const s = validateSchema(JSON.parse('{"fields": {"__proto__": "number"}}'));
    expect(fieldType(s, "__proto__")).toBe("number");
    expect(fieldType(s, "constructor")).toBeUndefined();
    expect(fieldType(schema, "toString")).toBeUndefined();
    expect(parseMetadata(s, JSON.parse('{"__proto__": "7"}'))).toEqual(JSON.parse('{"__proto__": 7}'));
  });
});

describe("parseMetadata", () => {
  test("each type parses; fields outside the schema are left out", () => {
    const typed = parseMetadata(schema, { year: " 2021.5 ", released: "2024-02-29T12:30:00.250+01:00", title: "Mesh: ünïcode ✓", draft: "false", tags: " a, b ,a,, c ", other: "whatever" });
    expect(typed).toEqual({ year: 2021.5, released: Date.UTC(2024, 1, 29, 11, 30, 0, 250), title: "Mesh: ünïcode ✓", draft: false, tags: ["a", "b", "c"] });
    expect(parseMetadata(schema, {})).toEqual({});
  });

  test("numbers: finite float64 in decimal notation; -0 is 0", () => {
    const num = (v: string) => parseMetadata({ fields: { n: "number" } }, { n: v }).n;
    expect([num("1e3"), num("-.5"), num("+7"), num("5."), num("1.7976931348623157e308"), num("4e-324")]).toEqual([1000, -0.5, 7, 5, Number.MAX_VALUE, Number.MIN_VALUE]);
    expect(Object.is(num("-0"), 0)).toBe(true);
    for (const bad of ["", " ", "0x10", "1_000", "Infinity", "-Infinity", "NaN", "1e400", "1,5", "12abc", "--1"]) {
      const err = errorOf(() => num(bad));
      expect([err.code, err.status]).toEqual(["InvalidArgument", 400]);
      expect(err.message).toStartWith('metadata field "n" must be a number: ');
    }
    expect(errorOf(() => num("1e400")).message).toContain("out of the range of a float64");
  });

  test("dates: RFC 3339 (offsets, fractions, lowercase t/z, a full-date alone) or integer epoch ms, before 1970 too", () => {
    expect(parseDate("2024-01-01T00:00:00Z")).toBe(Date.UTC(2024, 0, 1));
    expect(parseDate("2024-01-01t00:00:00z")).toBe(Date.UTC(2024, 0, 1));
    expect(parseDate("2024-01-01T05:30:00+05:30")).toBe(Date.UTC(2024, 0, 1));
    expect(parseDate("2023-12-31T19:00:00-05:00")).toBe(Date.UTC(2024, 0, 1));
    expect(parseDate("2024-01-01T00:00:00.1234567Z")).toBe(Date.UTC(2024, 0, 1) + 123);
    expect(parseDate("2024-01-01")).toBe(Date.UTC(2024, 0, 1));
    expect(parseDate("1969-12-31T23:59:59.999Z")).toBe(-1);
    expect(parseDate("0001-01-01T00:00:00Z")).toBe(new Date("0001-01-01T00:00:00Z").getTime());
    expect(parseDate("1990-12-31T23:59:60Z")).toBe(Date.UTC(1991, 0, 1)); // a leap second: the next minute's first
    expect(parseDate("1700000000000")).toBe(1_700_000_000_000);
    expect(parseDate("-86400000")).toBe(-86_400_000);
    expect(parseMetadata(schema, { released: "2024-02-29" }).released).toBe(Date.UTC(2024, 1, 29));
    for (const bad of ["2023-02-29", "2024-13-01", "2024-04-31", "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:00", "2024-1-1", "yesterday", "1.5", "99999999999999999", ""]) {
      const err = errorOf(() => parseMetadata(schema, { released: bad }));
      expect([err.code, err.message.startsWith('metadata field "released" must be a date: ')]).toEqual(["InvalidArgument", true]);
    }
  });

  test("bool: exactly true or false", () => {
    expect(parseMetadata(schema, { draft: "true" }).draft).toBe(true);
    for (const bad of ["TRUE", "1", "yes", ""]) expect(errorOf(() => parseMetadata(schema, { draft: bad })).message).toContain('"draft" must be a bool');
  });

  test("string: at most 256 UTF-8 bytes, valid Unicode", () => {
    expect(parseMetadata(schema, { title: "a".repeat(256) }).title).toHaveLength(256);
    expect(parseMetadata(schema, { title: "é".repeat(128) }).title).toHaveLength(128);
    expect(errorOf(() => parseMetadata(schema, { title: "a".repeat(257) })).message).toBe('metadata field "title" must be a string: the value is 257 bytes; a string holds at most 256');
    expect(errorOf(() => parseMetadata(schema, { title: "é".repeat(129) })).message).toContain("258 bytes");
    expect(errorOf(() => parseMetadata(schema, { title: "a\ud800b" })).message).toContain("lone surrogate");
  });

  test("keywords: comma-separated, trimmed, empties and repeats dropped, each a string; at most 32", () => {
    expect(parseMetadata(schema, { tags: "" }).tags).toEqual([]);
    expect(parseMetadata(schema, { tags: "solo" }).tags).toEqual(["solo"]);
    expect(parseMetadata(schema, { tags: Array.from({ length: 32 }, (_, i) => `t${i}`).join(",") }).tags).toHaveLength(32);
    expect(errorOf(() => parseMetadata(schema, { tags: Array.from({ length: 33 }, (_, i) => `t${i}`).join(",") })).message).toContain("33 keywords; at most 32");
    expect(errorOf(() => parseMetadata(schema, { tags: `ok, ${"x".repeat(257)}` })).message).toContain('"tags" must be a keywords: keyword "xxx');
  });

  test("the first bad field refuses the whole object", () => {
    const err = errorOf(() => parseMetadata(schema, { title: "fine", year: "twenty" }));
    expect(err.message).toBe('metadata field "year" must be a number: "twenty" is not a decimal number');
  });
});
