// The search query (src/search/query.ts): the ?q= text form and its errors at their
// positions, validation against a schema plus the system fields, `matches` on one object,
// and the order of results, checked against the order of the encoded index rows.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { MeshError } from "../../src/errors.ts";
import { encodeValue } from "../../src/search/encoding.ts";
import { compareResults, matches, parseQueryText, queryFromText, QueryError, selects, validateQuery, type QueryObject, type ValidQuery } from "../../src/search/query.ts";
import { parseMetadata, validateSchema, type SystemFields } from "../../src/search/schema.ts";

const schema = validateSchema({ fields: { year: "number", released: "date", title: "string", draft: "bool", tags: "keywords" } });

/** The QueryError `fn` throws: code, status, message and position. */
function errorOf(fn: () => unknown): { code: string; status: number; message: string; position?: number } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(QueryError);
    const e = err as QueryError;
    return { code: e.code, status: e.status, message: e.message, position: e.position };
  }
  throw new Error("expected a QueryError, nothing was thrown");
}

const system = (over: Partial<SystemFields> = {}): SystemFields => ({ key: "k", size: 10, lastModified: Date.UTC(2024, 5, 1), contentType: "text/plain", etag: "e", ...over });
const obj = (key: string, meta: Record<string, string>, over: Partial<SystemFields> = {}): QueryObject => ({ key, typed: parseMetadata(schema, meta), system: system({ key, ...over }) });

describe("the text form", () => {
  test("the examples parse into the JSON model", () => {
    expect(parseQueryText('year>=2020 and title prefix "Mesh"').query.where).toEqual([
      { field: "year", op: ">=", value: 2020 },
      { field: "title", op: "prefix", value: "Mesh" },
    ]);
    expect(parseQueryText('tags in ("a", "b")').query.where).toEqual([{ field: "tags", op: "in", value: ["a", "b"] }]);
    expect(parseQueryText("draft = false").query.where).toEqual([{ field: "draft", op: "=", value: false }]);
    expect(parseQueryText("released < 2024-01-01T00:00:00Z").query.where).toEqual([{ field: "released", op: "<", value: "2024-01-01T00:00:00Z" }]);
  });

  test("spacing, AND in capitals, every operator, negative and exponent numbers, escapes, an empty query", () => {
    const { query, positions } = parseQueryText('  year!=-1.5e3 AND size<=10 and size>0 and size<9 and etag="a\\"b\\\\c\\u00e9\\n" and tags in("x")  ');
    expect(query.where).toEqual([
      { field: "year", op: "!=", value: -1500 },
      { field: "size", op: "<=", value: 10 },
      { field: "size", op: ">", value: 0 },
      { field: "size", op: "<", value: 9 },
      { field: "etag", op: "=", value: 'a"b\\cé\n' },
      { field: "tags", op: "in", value: ["x"] },
    ]);
    expect(positions[0]).toEqual({ field: 2, op: 6, value: 8 });
    expect(parseQueryText("").query.where).toEqual([]);
    expect(parseQueryText("   ").query.where).toEqual([]);
    expect(parseQueryText("title prefix'x'".replace("'x'", '"x"')).query.where).toEqual([{ field: "title", op: "prefix", value: "x" }]);
  });

  test("faults are InvalidQuery with their 0-based position", () => {
    const cases: Array<[string, number, string]> = [
      ["year >= ", 8, "expected a value"],
      ["year 2020", 5, "expected an operator"],
      ["year == 1", 6, "expected a value"],
      [">= 3", 0, "expected a field name"],
      ["year >= 2020 or draft = true", 13, 'only "and" combines conditions'],
      ["year >= 2020 draft = true", 13, 'expected "and" or the end'],
      ["year >= 2020 and", 16, 'expected a condition after "and"'],
      ['title = "abc', 8, "unterminated string opened"],
      ['title = "a\\qb"', 10, 'unknown escape "\\\\q"'],
      ["title = Mesh", 8, 'unexpected word "Mesh": quote string values'],
      ["year = 1e400", 7, "out of the range of a float64"],
      ['tags in "a"', 8, '"in" takes a list in parentheses'],
      ['tags in ("a" "b")', 13, 'expected "," or ")"'],
      ["tags in ()", 9, "expected a value"],
      ["year prefixx 1", 5, "expected an operator"],
    ];
    for (const [q, position, message] of cases) {
      const err = errorOf(() => parseQueryText(q));
      expect({ q, code: err.code, status: err.status, position: err.position }).toEqual({ q, code: "InvalidQuery", status: 400, position });
      expect(err.message).toContain(message);
      expect(err.message).toEndWith(`at position ${position}`);
    }
    expect(errorOf(() => parseQueryText("x".repeat(4097))).message).toContain("at most 4096");
    expect(errorOf(() => parseQueryText(Array.from({ length: 33 }, () => "size > 1").join(" and "))).message).toContain("at most 32 conditions");
    expect(errorOf(() => parseQueryText(`tags in (${Array.from({ length: 33 }, (_, i) => `"${i}"`).join(",")})`)).message).toContain("at most 32 values");
  });

  test("validation faults of a text query point at the field, operator or value", () => {
    const cases: Array<[string, number, string]> = [
      ["year > 1 and nope = 1", 13, 'unknown field "nope": the system fields are key, size, lastModified, contentType, etag; the bucket\'s schema has year, released, title, draft, tags'],
      ["year prefix 1", 5, '"prefix" does not apply to year, a number field'],
      ["tags < 3", 5, '"<" does not apply to tags, a keywords field'],
      ["draft > false", 6, '">" does not apply to draft, a bool field'],
      ['year = "2020"', 7, 'year is a number field: its value must be a finite number, not "2020"'],
      ["title = 5", 8, "title is a string field: its value must be a quoted string"],
      ["draft = 1", 8, "draft is a bool field: its value must be true or false"],
      ["released < 2024-02-30", 11, "released is a date field:"],
      ["released < true", 11, "released is a date field: its value must be an RFC 3339 date or integer epoch ms"],
      ['tags in ("a", 1)', 8, "tags is a keywords field"],
    ];
    for (const [q, position, message] of cases) {
      const err = errorOf(() => queryFromText(q, schema));
      expect({ q, code: err.code, position: err.position }).toEqual({ q, code: "InvalidQuery", position });
      expect(err.message).toContain(message);
    }
  });
});

describe("validateQuery (the JSON model)", () => {
  test("defaults: sorted by key ascending, 100 per page, not partial; values typed; user fields listed once", () => {
    const q = validateQuery({ where: [{ field: "released", op: ">=", value: "1969-12-31T00:00:00Z" }, { field: "released", op: "<", value: 0 }, { field: "size", op: "in", value: [1, 2] }], sort: { field: "year" } }, schema);
    expect(q).toEqual({
      where: [
        { field: "released", type: "date", system: false, op: ">=", value: -86_400_000 },
        { field: "released", type: "date", system: false, op: "<", value: 0 },
        { field: "size", type: "number", system: true, op: "in", value: [1, 2] },
      ],
      sort: { field: "year", type: "number", system: false, order: "asc" },
      limit: 100,
      cursor: undefined,
      allowPartial: false,
      fields: ["released", "year"],
    });
    expect(validateQuery({ where: [], limit: 1000, cursor: "abc", allowPartial: true, sort: { field: "lastModified", order: "desc" } }, schema)).toMatchObject({ limit: 1000, cursor: "abc", allowPartial: true, sort: { field: "lastModified", type: "date", order: "desc" } });
    expect(validateQuery({}, schema).where).toEqual([]);
  });

  test("faults name the condition and the reason", () => {
    const cases: Array<[unknown, string]> = [
      [null, "a query is an object"],
      [{ where: {} }, '"where" is a list'],
      [{ where: [], select: 1 }, 'unknown query property "select"'],
      [{ where: [1] }, 'where[0]: a condition is {"field", "op", "value"}'],
      [{ where: [{ field: 3, op: "=", value: 1 }] }, "where[0]: a field is named by a string, not 3"],
      [{ where: [{ field: "size", op: ">", value: 1 }, { field: "Year", op: "=", value: 1 }] }, 'where[1]: unknown field "Year"'],
      [{ where: [{ field: "size", op: "~", value: 1 }] }, 'where[0]: unknown operator "~": use = != < <= > >= prefix in'],
      [{ where: [{ field: "size", op: "=", value: "1" }] }, 'where[0]: size is a number field: its value must be a finite number, not "1"'],
      [{ where: [{ field: "size", op: "=" }] }, "where[0]: size is a number field: its value must be a finite number, not undefined"],
      [{ where: [{ field: "tags", op: "in", value: [] }] }, 'where[0]: "in" takes a list of 1 to 32 values'],
      [{ where: [{ field: "tags", op: "in", value: Array.from({ length: 33 }, (_, i) => `t${i}`) }] }, '"in" takes a list of 1 to 32 values'],
      [{ where: [{ field: "tags", op: "in", value: "a" }] }, '"in" takes a list'],
      [{ where: [{ field: "title", op: "=", value: "x".repeat(257) }] }, "where[0]: title: the value is 257 bytes"],
      [{ where: Array.from({ length: 33 }, () => ({ field: "size", op: ">", value: 0 })) }, "at most 32 conditions"],
      [{ sort: { field: "tags" } }, "sort: tags is a keywords field"],
      [{ sort: { field: "nope" } }, 'sort: unknown field "nope"'],
      [{ sort: { field: "year", order: "up" } }, 'sort: order is "asc" or "desc", not "up"'],
      [{ sort: "year" }, '"sort" is {"field", "order"'],
      [{ limit: 0 }, "limit is a whole number from 1 to 1000, not 0"],
      [{ limit: 1001 }, "not 1001"],
      [{ limit: 2.5 }, "not 2.5"],
      [{ limit: "10" }, 'not "10"'],
      [{ cursor: 5 }, "cursor is the nextCursor of an earlier page"],
      [{ cursor: "c".repeat(4097) }, "cursor is the nextCursor"],
      [{ allowPartial: "yes" }, "allowPartial is true or false"],
    ];
    for (const [raw, message] of cases) {
      const err = errorOf(() => validateQuery(raw, schema));
      expect({ raw, code: err.code, status: err.status }).toEqual({ raw, code: "InvalidQuery", status: 400 });
      expect(err.message).toContain(message);
    }
  });

  test("a key value may be as long as a key (1024 bytes), longer than a metadata string", () => {
    expect(validateQuery({ where: [{ field: "key", op: "prefix", value: "k".repeat(1024) }] }, schema).where[0].value).toHaveLength(1024);
    expect(errorOf(() => validateQuery({ where: [{ field: "key", op: "=", value: "k".repeat(1025) }] }, schema)).message).toContain("at most 1024 bytes");
  });

  test("InvalidQuery and IndexNotReady are codes of the error table", () => {
    expect([new MeshError("InvalidQuery", "x").status, new MeshError("IndexNotReady", "x").status]).toEqual([400, 409]);
  });
});

describe("matches", () => {
  const where = (q: string) => queryFromText(q, schema).where;
  const m = (o: QueryObject, q: string) => matches(o.typed, o.system, where(q));
  const a = obj("docs/a", { year: "2021", released: "1969-07-20T20:17:00Z", title: "Mesh networks", draft: "false", tags: "net, p2p" }, { size: 300, contentType: "text/markdown" });
  const b = obj("docs/b", { year: "-5", released: "2024-01-01", title: "mesh", tags: "" });

  test("comparisons on numbers, dates (before 1970 too), strings, bools and system fields", () => {
    expect([m(a, "year >= 2020"), m(b, "year >= 2020"), m(b, "year < 0"), m(a, "year = 2021.0"), m(a, "year != 2021")]).toEqual([true, false, true, true, false]);
    expect([m(a, "released < 1970-01-01"), m(a, "released < 0"), m(b, "released >= 2024-01-01T00:00:00Z"), m(b, "released > 2024-01-01")]).toEqual([true, true, true, false]);
    expect([m(a, 'title prefix "Mesh"'), m(b, 'title prefix "Mesh"'), m(a, 'title > "Mesh"'), m(b, 'title > "Mesh"'), m(a, 'title prefix ""')]).toEqual([true, false, true, true, true]);
    expect([m(a, "draft = false"), m(a, "draft != true"), m(a, "draft in (true)")]).toEqual([true, true, false]);
    expect([m(a, 'key prefix "docs/"'), m(a, "size > 299 and size <= 300"), m(a, 'contentType = "text/markdown"'), m(a, "lastModified = 2024-06-01")]).toEqual([true, true, true, true]);
    expect([m(a, "year in (1, 2021, 3)"), m(a, 'title in ("mesh", "Mesh networks")'), m(a, "year >= 2020 and draft = true")]).toEqual([true, true, false]);
  });

  test("keywords: any element matches; != means no element equals; an empty list matches nothing", () => {
    expect([m(a, 'tags = "p2p"'), m(a, 'tags = "x"'), m(a, 'tags prefix "ne"'), m(a, 'tags in ("x", "net")'), m(a, 'tags in ("x", "y")')]).toEqual([true, false, true, true, false]);
    expect([m(a, 'tags != "p2p"'), m(a, 'tags != "x"')]).toEqual([false, true]);
    expect([m(b, 'tags = ""'), m(b, 'tags prefix ""'), m(b, 'tags != "x"')]).toEqual([false, false, true]);
  });

  test("an object without a field meets no condition on it, != included", () => {
    expect([m(b, "draft = false"), m(b, "draft != false"), m(b, "draft != true")]).toEqual([false, false, false]);
    expect(m(b, "")).toBe(true);
  });

  test("strings compare by UTF-8 bytes (code points), not UTF-16 units", () => {
    const astral = obj("x", { title: "😀" });
    expect([m(astral, 'title > "\uffff"'), m(astral, 'title < "\uffff"')]).toEqual([true, false]);
  });
});

describe("the order of results", () => {
  const q = (sort: unknown, where: unknown[] = []): ValidQuery => validateQuery({ where, sort }, schema);

  test("by the sort field, ties by key, both reversed for desc; objects without the field are not selected", () => {
    const objects = [obj("c", { year: "1" }), obj("a", { year: "2" }), obj("b", { year: "1" }), obj("d", {}), obj("e", { year: "-0" })];
    const asc = q({ field: "year" });
    expect(objects.toSorted(compareResults(asc.sort)).map((o) => o.key)).toEqual(["e", "b", "c", "a", "d"]);
    expect(objects.filter((o) => selects(asc, o)).map((o) => o.key)).toEqual(["c", "a", "b", "e"]);
    const desc = q({ field: "year", order: "desc" });
    expect(objects.filter((o) => selects(desc, o)).toSorted(compareResults(desc.sort)).map((o) => o.key)).toEqual(["a", "c", "b", "e"]);
    expect(objects.toSorted(compareResults(q(undefined).sort)).map((o) => o.key)).toEqual(["a", "b", "c", "d", "e"]);
  });

  test("the comparator agrees with the byte order of the encoded rows (value, then key) for every sortable type", () => {
    const storeOrder = (x: string, y: string) => Math.sign(Buffer.compare(Buffer.from(x, "utf8"), Buffer.from(y, "utf8")));
    const key = fc.string({ unit: "binary", minLength: 1, maxLength: 6 });
    const meta = fc.record({
      year: fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
      released: fc.integer({ min: -8.64e15, max: 8.64e15 }).map(String),
      title: fc.string({ unit: fc.constantFrom("\u0000", "a", "b", "é", "\uffff", "😀"), maxLength: 5 }),
      draft: fc.boolean().map(String),
    });
    const fields = ["year", "released", "title", "draft"] as const;
    fc.assert(
      fc.property(fc.array(fc.tuple(key, meta), { minLength: 2, maxLength: 20 }), fc.constantFrom(...fields), fc.boolean(), (items, field, descending) => {
        const objects = items.map(([k, mt]) => obj(k, mt));
        const { sort } = q({ field, order: descending ? "desc" : "asc" });
        const type = schema.fields[field];
        const row = (o: QueryObject) => encodeValue(type, o.typed[field] as number | string | boolean) + o.key;
        const byComparator = objects.toSorted(compareResults(sort)).map(row);
        const byRows = objects.map(row).toSorted((x, y) => (descending ? -1 : 1) * storeOrder(x, y));
        return JSON.stringify(byComparator) === JSON.stringify(byRows);
      }),
      { seed: 1414, numRuns: 200 },
    );
  });
});
