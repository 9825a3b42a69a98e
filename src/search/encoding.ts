// Order-preserving encodings of typed values, for the names of secondary index rows
// ("<field's prefix><encoded value><key>"): rows of one field sort by value, then by key.
//
// The form: a JS string, because index rows are JS strings. The store (src/store/index-store.ts)
// writes a row as its UTF-8 bytes and LevelDB compares keys bytewise, and UTF-8 byte order
// is code point order. So fixed-width values (number, date, bool) are their big-endian bytes
// as one char per byte, U+0000..U+00FF (latin1): code point order of those chars is the byte
// order, whatever UTF-8 makes of them (bytes >= 0x80 take two, still in order), and 0xFF, the
// store's end-of-prefix bound, never appears. Hex would be as safe at twice the length.
// Strings keep their own chars: code point order is UTF-8 byte order, so comparing encodings
// compares the values' UTF-8 bytes; only U+0000 is escaped (to U+0000 U+00FF) so that a NUL
// inside a value cannot end it, and U+0000 U+0001 ends every string, below any escaped NUL
// or other char, so a string sorts before every longer string it starts. Every encoding is
// self-delimiting, so the key after it never changes the order of two values.
// In memory, compare rows with compareKeys (src/metadata/keys.ts), as keys are: `<` on JS
// strings is UTF-16 order, which puts astral chars of a string value below U+E000..U+FFFF.
import type { FieldType } from "./schema.ts";
import { MAX_DATE_MS } from "./schema.ts";

/** Width of an encoded number or date, in chars (one per byte of the int64/float64). */
export const FIXED_WIDTH = 8;

const NUL = "\u0000";
const END = NUL + "\u0001";
const ESCAPED_NUL = NUL + "\u00ff";

const toText = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

function fromText(text: string, at: number, width: number, what: string): DataView {
  if (at < 0 || at + width > text.length) throw new Error(`encoded ${what} is cut short at ${at}`);
  const view = new DataView(new ArrayBuffer(width));
  for (let i = 0; i < width; i++) {
    const c = text.charCodeAt(at + i);
    if (c > 0xff) throw new Error(`encoded ${what} has a char above U+00FF at ${at + i}`);
    view.setUint8(i, c);
  }
  return view;
}

/** A number as float64 bytes with the sign bit set (positives) or every bit flipped (negatives); -0 as 0; NaN and ±Infinity throw. */
export function encodeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`${n} cannot be indexed: only finite numbers`);
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, n === 0 ? 0 : n);
  const hi = view.getUint32(0);
  if (hi & 0x80000000) {
    view.setUint32(0, ~hi >>> 0);
    view.setUint32(4, ~view.getUint32(4) >>> 0);
  } else {
    view.setUint32(0, (hi | 0x80000000) >>> 0);
  }
  return toText(new Uint8Array(view.buffer));
}

/** The number encoded at `at` of `text` (FIXED_WIDTH chars). */
export function decodeNumber(text: string, at = 0): number {
  const view = fromText(text, at, FIXED_WIDTH, "number");
  const hi = view.getUint32(0);
  if (hi & 0x80000000) {
    view.setUint32(0, (hi & 0x7fffffff) >>> 0);
  } else {
    view.setUint32(0, ~hi >>> 0);
    view.setUint32(4, ~view.getUint32(4) >>> 0);
  }
  return view.getFloat64(0);
}

const OFFSET = 1n << 63n;

/** A date (integer epoch ms, before 1970 negative) as an int64 offset by 2^63, big-endian: earlier sorts first. */
export function encodeDate(ms: number): string {
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > MAX_DATE_MS) throw new RangeError(`${ms} cannot be indexed as a date: integer ms within ±${MAX_DATE_MS}`);
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(ms) + OFFSET);
  return toText(new Uint8Array(view.buffer));
}

/** The date (epoch ms) encoded at `at` of `text` (FIXED_WIDTH chars). */
export function decodeDate(text: string, at = 0): number {
  const ms = Number(fromText(text, at, FIXED_WIDTH, "date").getBigUint64(0) - OFFSET);
  return ms === 0 ? 0 : ms;
}

/** A bool as one char: false U+0000, true U+0001. */
export const encodeBool = (b: boolean): string => String.fromCharCode(b ? 1 : 0);

/** The bool encoded at `at` of `text` (one char). */
export function decodeBool(text: string, at = 0): boolean {
  const c = text.charCodeAt(at);
  if (c !== 0 && c !== 1) throw new Error(`encoded bool at ${at} is not U+0000 or U+0001`);
  return c === 1;
}

/**
 * What the encoding of every string that starts with `prefix` starts with (and no other
 * string's does): a `prefix` query scans the field's rows that start with this text.
 */
export const encodeStringPrefix = (prefix: string): string => prefix.replaceAll(NUL, ESCAPED_NUL);

/** A string with NUL escaped and an end marker (see the top of the file). */
export const encodeString = (s: string): string => encodeStringPrefix(s) + END;

/** The string encoded at `at` of `text`, and where its encoding ends. */
export function decodeString(text: string, at = 0): { value: string; end: number } {
  let value = "";
  let from = at;
  for (;;) {
    const nul = text.indexOf(NUL, from);
    if (nul < 0) throw new Error(`encoded string from ${at} has no end marker`);
    value += text.slice(from, nul);
    const next = text.charCodeAt(nul + 1);
    if (next === 0x01) return { value, end: nul + 2 };
    if (next !== 0xff) throw new Error(`encoded string has a bare NUL at ${nul}`);
    value += NUL;
    from = nul + 2;
  }
}

/** A single value of a field of `type` (one element, for keywords). */
export type EncodableValue = number | string | boolean;

/** Encode one value of a field of `type` (a keywords field indexes each element as a string). */
export function encodeValue(type: FieldType, value: EncodableValue): string {
  switch (type) {
    case "number":
      if (typeof value !== "number") break;
      return encodeNumber(value);
    case "date":
      if (typeof value !== "number") break;
      return encodeDate(value);
    case "bool":
      if (typeof value !== "boolean") break;
      return encodeBool(value);
    case "string":
    case "keywords":
      if (typeof value !== "string") break;
      return encodeString(value);
  }
  throw new TypeError(`a ${typeof value} is not a value of a ${type} field`);
}

/** Decode the value of a field of `type` at `at` of `text`, and where its encoding ends (where the key begins). */
export function decodeValue(type: FieldType, text: string, at = 0): { value: EncodableValue; end: number } {
  switch (type) {
    case "number":
      return { value: decodeNumber(text, at), end: at + FIXED_WIDTH };
    case "date":
      return { value: decodeDate(text, at), end: at + FIXED_WIDTH };
    case "bool":
      return { value: decodeBool(text, at), end: at + 1 };
    case "string":
    case "keywords":
      return decodeString(text, at);
  }
}
