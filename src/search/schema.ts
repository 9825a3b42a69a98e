// A bucket's search schema: which user metadata fields are indexed and as what type, the
// system fields every object has without a schema, and the parsing of one object's
// metadata values into typed values. Pure: the schema's storage, its per-field build state
// and the routes come later (issue 14); they call validateSchema on PUT and
// parseMetadata on every object write, before anything is stored.
import { BadRequestError } from "../errors.ts";

/** The types a field can have. */
export const FIELD_TYPES = ["number", "date", "string", "bool", "keywords"] as const;
/** A field's type. */
export type FieldType = (typeof FIELD_TYPES)[number];

/** A typed value: number, date (epoch ms), string, bool, keywords (distinct strings, in order of first appearance). */
export type TypedValue = number | string | boolean | string[];

/** A bucket's schema: user metadata field name to type. Look fields up with `fieldType` (own properties only). */
export interface BucketSchema {
  fields: Record<string, FieldType>;
}

/** Most fields in one schema. */
export const MAX_FIELDS = 32;
/** Longest string value (and keywords element), in UTF-8 bytes. */
export const MAX_STRING_BYTES = 256;
/** Most elements in one keywords value: each is one index row. */
export const MAX_KEYWORDS = 32;
/** What a user field name looks like (user metadata names are lowercased, so no capitals). */
export const FIELD_NAME_RE = /^[a-z0-9_-]{1,64}$/;

/** The fields every object has, with their types; queries may use them with no schema. */
export const SYSTEM_FIELDS = {
  key: "string",
  size: "number",
  lastModified: "date",
  contentType: "string",
  etag: "string",
} as const satisfies Record<string, FieldType>;
/** A system field's name. */
export type SystemFieldName = keyof typeof SYSTEM_FIELDS;
/** An object's system field values (lastModified in epoch ms). */
export type SystemFields = { [F in SystemFieldName]: F extends "size" | "lastModified" ? number : string };

/** True if `name` is a system field (exact spelling). */
export const isSystemField = (name: string): name is SystemFieldName => Object.hasOwn(SYSTEM_FIELDS, name);

// User metadata names are lowercased, so "lastmodified" is how a user field would spell a
// system one; reserving that spelling keeps a query's `lastModified` unambiguous.
const RESERVED = new Set(Object.keys(SYSTEM_FIELDS).map((n) => n.toLowerCase()));

/** The type of user field `name` in `schema`, or undefined (never an inherited property such as "__proto__"). */
export function fieldType(schema: BucketSchema, name: string): FieldType | undefined {
  return Object.hasOwn(schema.fields, name) ? schema.fields[name] : undefined;
}

const isFieldType = (t: unknown): t is FieldType => typeof t === "string" && (FIELD_TYPES as readonly string[]).includes(t);
const bad = (message: string) => new BadRequestError(message, "InvalidArgument");
const show = (s: string) => JSON.stringify(s.slice(0, 80));

/** Check a schema as a client sent it (`{fields: {name: type}}`) and return it; throws InvalidArgument. */
export function validateSchema(raw: unknown): BucketSchema {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad('a schema is an object: {"fields": {"name": "type", ...}}');
  const extra = Object.keys(raw).filter((k) => k !== "fields");
  if (extra.length) throw bad(`unknown schema property ${show(extra[0])}: a schema has only "fields"`);
  const fields: unknown = (raw as { fields?: unknown }).fields;
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) throw bad('a schema needs "fields": an object of field name to type');
  const entries = Object.entries(fields);
  if (entries.length > MAX_FIELDS) throw bad(`a schema has at most ${MAX_FIELDS} fields; this one has ${entries.length}`);
  for (const [name, type] of entries) {
    if (isSystemField(name) || RESERVED.has(name)) throw bad(`field name ${show(name)} is reserved: ${Object.keys(SYSTEM_FIELDS).join(", ")} are system fields, queryable without a schema`);
    if (!FIELD_NAME_RE.test(name)) throw bad(`invalid field name ${show(name)}: use 1 to 64 lowercase letters, digits, "_" and "-" (user metadata names are lowercase)`);
    if (!isFieldType(type)) throw bad(`field ${show(name)} has type ${JSON.stringify(type)?.slice(0, 40)}; the types are ${FIELD_TYPES.join(", ")}`);
  }
  // fromEntries defines own properties, so a field named "__proto__" stays a field.
  return { fields: Object.fromEntries(entries) as Record<string, FieldType> };
}

// ---- Values ----

// A decimal number as people write it: no hex, no "Infinity", no empty string (Number() takes all three).
const NUMBER_RE = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER_RE = /^-?\d{1,16}$/;
// RFC 3339 full-date, or date-time with a zone; "T"/"Z" in either case (the RFC allows it).
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2}))?$/;
/** Farthest instant a JS Date can hold, in ms either side of 1970 (so every date value fits an int64 and a Date). */
export const MAX_DATE_MS = 8.64e15;

/** Parse a number value (a finite float64 in decimal notation); the reason is thrown as a plain Error. */
export function parseNumber(text: string): number {
  const t = text.trim();
  if (!NUMBER_RE.test(t)) throw new Error(`${show(t)} is not a decimal number`);
  const n = Number(t);
  if (!Number.isFinite(n)) throw new Error(`${show(t)} is out of the range of a float64`);
  return n === 0 ? 0 : n; // -0 and 0 are one value
}

/** Parse a date value (RFC 3339, or an integer of epoch ms) into epoch ms; the reason is thrown as a plain Error. */
export function parseDate(text: string): number {
  const t = text.trim();
  let ms: number;
  if (INTEGER_RE.test(t)) {
    ms = Number(t);
  } else {
    const m = DATE_RE.exec(t);
    if (!m) throw new Error(`${show(t)} is neither an RFC 3339 date (2024-01-31T12:00:00Z) nor epoch milliseconds`);
    const [y, mo, d, h = 0, mi = 0, s = 0] = m.slice(1, 7).map((x) => (x === undefined ? undefined : Number(x))) as number[];
    const last = new Date(0);
    last.setUTCFullYear(y, mo, 0); // day 0 of the next month: the last of this one (Date.UTC reads years 0..99 as 19xx)
    const days = last.getUTCDate();
    // Second 60 is a leap second: the RFC allows it, and it counts as the next minute's first.
    if (mo < 1 || mo > 12 || d < 1 || d > days || h > 23 || mi > 59 || s > 60) throw new Error(`${show(t)} is not a calendar date and time`);
    const frac = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, "0")); // whole ms, finer digits dropped
    const zone = m[8];
    const offsetMin = zone === undefined || zone === "Z" || zone === "z" ? 0 : (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
    const date = new Date(0);
    date.setUTCFullYear(y, mo - 1, d);
    date.setUTCHours(h, mi, s, frac);
    ms = date.getTime() - offsetMin * 60_000;
  }
  if (!Number.isSafeInteger(ms) || Math.abs(ms) > MAX_DATE_MS) throw new Error(`${show(t)} is out of the range of dates (±${MAX_DATE_MS} ms from 1970)`);
  return ms === 0 ? 0 : ms;
}

/** Parse a bool value: exactly `true` or `false`. */
export function parseBool(text: string): boolean {
  const t = text.trim();
  if (t === "true") return true;
  if (t === "false") return false;
  throw new Error(`${show(t)} is not true or false`);
}

// A lone surrogate has no UTF-8 form: it would be stored as U+FFFD and compare wrongly.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Check a string value (at most 256 UTF-8 bytes, valid Unicode) and return it as given. */
export function parseString(text: string): string {
  if (LONE_SURROGATE.test(text)) throw new Error("the value is not valid Unicode (a lone surrogate)");
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_STRING_BYTES) throw new Error(`the value is ${bytes} bytes; a string holds at most ${MAX_STRING_BYTES}`);
  return text;
}

/** Parse a keywords value: comma-separated, each trimmed, empty ones and repeats dropped. */
export function parseKeywords(text: string): string[] {
  const words = [...new Set(text.split(",").map((w) => w.trim()).filter((w) => w !== ""))];
  if (words.length > MAX_KEYWORDS) throw new Error(`the value has ${words.length} keywords; at most ${MAX_KEYWORDS}`);
  for (const w of words) {
    try {
      parseString(w);
    } catch (err) {
      throw new Error(`keyword ${show(w)}: ${(err as Error).message}`);
    }
  }
  return words;
}

/** Parse one value as `type`; the reason it does not parse is thrown as a plain Error. */
export function parseValue(type: FieldType, text: string): TypedValue {
  switch (type) {
    case "number":
      return parseNumber(text);
    case "date":
      return parseDate(text);
    case "bool":
      return parseBool(text);
    case "string":
      return parseString(text);
    case "keywords":
      return parseKeywords(text);
  }
}

/**
 * The typed values of one object's user metadata (`meta`: names lowercased, without the
 * x-meta-/x-amz-meta- prefix) for the fields of `schema`; metadata the schema does not
 * name is left out. Throws InvalidArgument naming the field and why, so a PUT stores nothing.
 */
export function parseMetadata(schema: BucketSchema, meta: Record<string, string>): Record<string, TypedValue> {
  const typed: Array<[string, TypedValue]> = [];
  for (const [name, type] of Object.entries(schema.fields)) {
    if (!Object.hasOwn(meta, name)) continue;
    try {
      typed.push([name, parseValue(type, meta[name])]);
    } catch (err) {
      throw bad(`metadata field "${name}" must be a ${type}: ${(err as Error).message}`);
    }
  }
  return Object.fromEntries(typed);
}
