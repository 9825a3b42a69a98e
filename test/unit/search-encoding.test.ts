// The order-preserving encodings of src/search/encoding.ts, as the store orders them: the
// UTF-8 bytes of a row name, compared bytewise (LevelDB's order). Property tests with a
// fixed seed (fast-check prints it, and the path, on a failure), and one pass through a
// real index store to show its scan returns encoded rows in value order.
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { decodeBool, decodeDate, decodeNumber, decodeString, decodeValue, encodeBool, encodeDate, encodeNumber, encodeString, encodeStringPrefix, encodeValue, FIXED_WIDTH } from "../../src/search/encoding.ts";
import { MAX_DATE_MS } from "../../src/search/schema.ts";
import { openIndexStore } from "../../src/store/index-store.ts";

const RUNS = { seed: 1414, numRuns: 400 };
/** Byte order of two row names as the store compares them: -1, 0 or 1. */
const storeOrder = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
const valueOrder = (a: number, b: number) => (a < b ? -1 : a > b ? 1 : 0);

const MIN_NORMAL = 2.2250738585072014e-308;
const SPECIAL_NUMBERS = [0, -0, Number.MIN_VALUE, -Number.MIN_VALUE, MIN_NORMAL, -MIN_NORMAL, MIN_NORMAL / 3, -MIN_NORMAL / 3, Number.MAX_VALUE, -Number.MAX_VALUE, 1, -1, 0.1, -0.1, 2 ** 53, -(2 ** 53), 1e300, -1e300];
const finite = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.double({ min: -MIN_NORMAL, max: MIN_NORMAL, noNaN: true }), // subnormals and their neighbours
  fc.constantFrom(...SPECIAL_NUMBERS),
);

describe("numbers", () => {
  test("byte order of encodings is numeric order (negatives, -0, subnormals, huge values)", () => {
    fc.assert(
      fc.property(finite, finite, (a, b) => storeOrder(encodeNumber(a), encodeNumber(b)) === valueOrder(a, b)),
      RUNS,
    );
    const sorted = [...SPECIAL_NUMBERS].sort((a, b) => a - b);
    const byEncoding = [...SPECIAL_NUMBERS].sort((a, b) => storeOrder(encodeNumber(a), encodeNumber(b)));
    expect(byEncoding.map((n) => n + 0)).toEqual(sorted.map((n) => n + 0));
  });

  test("round trip, -0 as 0, fixed width", () => {
    fc.assert(
      fc.property(finite, (n) => {
        const enc = encodeNumber(n);
        return enc.length === FIXED_WIDTH && Object.is(decodeNumber(enc), n === 0 ? 0 : n) && Object.is(decodeNumber(`xy${enc}key`, 2), n === 0 ? 0 : n);
      }),
      RUNS,
    );
    expect(encodeNumber(-0)).toBe(encodeNumber(0));
  });

  test("NaN and infinities are refused; a cut-short or foreign encoding does not decode", () => {
    for (const n of [Number.NaN, Infinity, -Infinity]) expect(() => encodeNumber(n)).toThrow(RangeError);
    expect(() => decodeNumber(encodeNumber(1).slice(0, 7))).toThrow("cut short");
    expect(() => decodeNumber("\u0100".repeat(8))).toThrow("U+00FF");
  });
});

describe("dates", () => {
  const ms = fc.oneof(fc.integer({ min: -MAX_DATE_MS, max: MAX_DATE_MS }), fc.integer({ min: -10_000, max: 10_000 }));

  test("byte order is time order, dates before 1970 first", () => {
    fc.assert(
      fc.property(ms, ms, (a, b) => storeOrder(encodeDate(a), encodeDate(b)) === valueOrder(a, b)),
      RUNS,
    );
    const dates = [Date.UTC(1969, 11, 31, 23, 59, 59, 999), 0, -MAX_DATE_MS, Date.UTC(1900, 0, 1), MAX_DATE_MS, Date.UTC(2024, 0, 1), -1, 1];
    expect(dates.toSorted((a, b) => storeOrder(encodeDate(a), encodeDate(b)))).toEqual(dates.toSorted((a, b) => a - b));
  });

  test("round trip; fractions and dates beyond a JS Date are refused", () => {
    fc.assert(
      fc.property(ms, (t) => decodeDate(encodeDate(t)) === t && decodeDate(`p${encodeDate(t)}`, 1) === t),
      RUNS,
    );
    for (const bad of [1.5, MAX_DATE_MS + 1, -MAX_DATE_MS - 1, Number.NaN]) expect(() => encodeDate(bad)).toThrow(RangeError);
  });
});

describe("strings", () => {
  // Mostly the chars that matter: NUL, the end marker's U+0001, U+00FF of the escape, the
  // edges of the BMP around the surrogates, and astral chars; plus any code point at all.
  const tricky = fc.string({ unit: fc.constantFrom("\u0000", "\u0001", "\u00ff", "a", "b", "é", "\u07ff", "\ud7ff", "\ue000", "\uffff", "😀", "\u{10ffff}"), maxLength: 8 });
  const str = fc.oneof(tricky, fc.string({ unit: "binary", maxLength: 12 }));
  const utf8Order = (a: string, b: string) => storeOrder(a, b);

  test("byte order of encodings is the UTF-8 byte order of the values", () => {
    fc.assert(
      fc.property(str, str, (a, b) => storeOrder(encodeString(a), encodeString(b)) === utf8Order(a, b)),
      RUNS,
    );
  });

  test("the key after a value never changes the order of two values; equal values order by key", () => {
    fc.assert(
      fc.property(str, str, str, str, (a, b, ka, kb) => {
        const rows = storeOrder(encodeString(a) + ka, encodeString(b) + kb);
        return rows === (utf8Order(a, b) || utf8Order(ka, kb));
      }),
      RUNS,
    );
  });

  test("round trip, and the decoder says where the key begins", () => {
    fc.assert(
      fc.property(str, str, (s, key) => {
        const row = `pre${encodeString(s)}${key}`;
        const { value, end } = decodeString(row, 3);
        return value === s && row.slice(end) === key;
      }),
      RUNS,
    );
    expect(encodeString("a\u0000b")).toBe("a\u0000\u00ffb\u0000\u0001");
    expect(() => decodeString("abc")).toThrow("no end marker");
    expect(() => decodeString("a\u0000b\u0000\u0001")).toThrow("bare NUL");
  });

  test("a prefix's text starts the encodings of exactly the strings with that prefix", () => {
    fc.assert(
      fc.property(str, str, (s, p) => encodeString(s).startsWith(encodeStringPrefix(p)) === s.startsWith(p)),
      RUNS,
    );
    fc.assert(
      fc.property(str, str, (p, rest) => encodeString(p + rest).startsWith(encodeStringPrefix(p))),
      RUNS,
    );
  });
});

describe("bools and the typed entry points", () => {
  test("false sorts before true; one char each; round trip", () => {
    expect(storeOrder(encodeBool(false), encodeBool(true))).toBe(-1);
    expect([encodeBool(false).length, decodeBool(encodeBool(true)), decodeBool(encodeBool(false))]).toEqual([1, true, false]);
    expect(() => decodeBool("\u0002")).toThrow("not U+0000 or U+0001");
  });

  test("encodeValue/decodeValue by field type, keywords elements as strings; wrong types refused", () => {
    const cases = [
      ["number", -12.5],
      ["date", -86_400_000],
      ["bool", true],
      ["string", "Mesh\u0000x"],
      ["keywords", "tag"],
    ] as const;
    for (const [type, v] of cases) {
      const enc = encodeValue(type, v);
      expect(decodeValue(type, `${enc}the/key`)).toEqual({ value: v, end: enc.length });
    }
    expect(() => encodeValue("number", "1")).toThrow(TypeError);
    expect(() => encodeValue("bool", 1)).toThrow(TypeError);
    expect(() => encodeValue("string", 1)).toThrow(TypeError);
  });
});

describe("through a real index store", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "meshstore-search-enc-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("a prefix scan returns number and string rows in value order, then key order, and they decode", async () => {
    const store = await openIndexStore(dir, { deletesAreFinal: () => false });
    try {
      const numbers = fc.sample(finite, { seed: 7, numRuns: 150 });
      const strings = fc.sample(fc.string({ unit: "binary", maxLength: 6 }), { seed: 8, numRuns: 150 });
      const keys = ["b", "a", "c\u0000d", "é"];
      for (const [i, n] of numbers.entries()) await store.apply("o0", `n${encodeNumber(n)}${keys[i % keys.length]}`, { ts: "1", value: 1 });
      for (const [i, s] of strings.entries()) await store.apply("o0", `s${encodeString(s)}${keys[i % keys.length]}`, { ts: "1", value: 1 });

      const numberRows = (await store.scan("o0", { prefix: "n", limit: 1000 })).map(([row]) => [decodeNumber(row, 1), row.slice(1 + FIXED_WIDTH)] as const);
      const wantNumbers = [...new Map(numbers.map((n, i) => [JSON.stringify([n + 0, keys[i % keys.length]]), [n + 0, keys[i % keys.length]] as const])).values()];
      wantNumbers.sort((x, y) => valueOrder(x[0], y[0]) || storeOrder(x[1], y[1]));
      expect(numberRows).toEqual(wantNumbers);

      const stringRows = (await store.scan("o0", { prefix: "s", limit: 1000 })).map(([row]) => {
        const { value, end } = decodeString(row, 1);
        return [value, row.slice(end)] as const;
      });
      const wantStrings = [...new Map(strings.map((s, i) => [JSON.stringify([s, keys[i % keys.length]]), [s, keys[i % keys.length]] as const])).values()];
      wantStrings.sort((x, y) => storeOrder(x[0], y[0]) || storeOrder(x[1], y[1]));
      expect(stringRows).toEqual(wantStrings);
    } finally {
      await store.close();
    }
  });
});
