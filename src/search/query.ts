// The search query: its model as clients send it (JSON to POST /buckets/{b}/query), the
// compact text form of `?q=`, validation against a bucket's schema into typed conditions,
// and the evaluation of a query against one object with the order of its results. Pure:
// the shard scans, the fan-out and the cursor's content come later (issue 14); a shard
// filters with `matches`, the coordinator merges with `compareResults`, and the model
// test evaluates by brute force with the same two functions.
import { BadRequestError } from "../errors.ts";
import { compareKeys, MAX_KEY_BYTES } from "../metadata/keys.ts";
import type { EncodableValue } from "./encoding.ts";
import { fieldType, isSystemField, parseDate, parseString, SYSTEM_FIELDS, type BucketSchema, type FieldType, type SystemFields, type TypedValue } from "./schema.ts";

/** The operators, in the order the docs list them. */
export const OPS = ["=", "!=", "<", "<=", ">", ">=", "prefix", "in"] as const;
/** A predicate's operator. */
export type Op = (typeof OPS)[number];

/** A value as a client writes it: dates as RFC 3339 text or epoch ms. */
export type RawValue = number | string | boolean;

/** One condition as a client sends it. */
export interface Predicate {
  field: string;
  op: Op;
  value: RawValue | RawValue[];
}

/** A sort order as a client sends it. */
export interface Sort {
  field: string;
  order?: "asc" | "desc";
}

/** A query as a client sends it; conditions combine with AND. */
export interface Query {
  where: Predicate[];
  sort?: Sort;
  limit?: number;
  cursor?: string;
  /** Answer even while a queried field's index is still building (its answer may miss objects). */
  allowPartial?: boolean;
}

/** A validated condition: the field's type and the value(s) typed (dates in epoch ms). */
export interface Condition {
  field: string;
  type: FieldType;
  /** A system field (key, size, ...), not user metadata. */
  system: boolean;
  op: Op;
  /** One value, or 1..MAX_IN values for `in`. */
  value: EncodableValue | EncodableValue[];
}

/** A validated sort order. */
export interface ValidSort {
  field: string;
  type: FieldType;
  system: boolean;
  order: "asc" | "desc";
}

/** A query checked against a schema, with defaults filled in. */
export interface ValidQuery {
  where: Condition[];
  sort: ValidSort;
  limit: number;
  cursor?: string;
  allowPartial: boolean;
  /** The user fields the query reads (where and sort), each once: each must have its index ready. */
  fields: string[];
}

/** What a query sees of one object. */
export interface QueryObject {
  key: string;
  /** Typed user metadata for the schema's fields (parseMetadata). */
  typed: Record<string, TypedValue>;
  system: SystemFields;
}

/** Most results on one page. */
export const MAX_LIMIT = 1000;
/** Results on one page when the query does not say. */
export const DEFAULT_LIMIT = 100;
/** Most values in one `in`. */
export const MAX_IN = 32;
/** Most conditions in one query. */
export const MAX_CONDITIONS = 32;
/** Longest text query (`?q=`), in chars. */
export const MAX_QUERY_TEXT = 4096;
/** Longest cursor, in chars (cursors are made by the coordinator; this only bounds what a client sends back). */
export const MAX_CURSOR = 4096;

/** A query that does not parse or does not fit the schema (400 InvalidQuery); `position` is the 0-based char of the fault in a text query. */
export class QueryError extends BadRequestError {
  constructor(
    message: string,
    readonly position?: number,
  ) {
    super(position === undefined ? message : `${message} at position ${position}`, "InvalidQuery");
  }
}

// ---- Which operators each type takes ----

const OPS_OF: Record<FieldType, readonly Op[]> = {
  number: ["=", "!=", "<", "<=", ">", ">=", "in"],
  date: ["=", "!=", "<", "<=", ">", ">=", "in"],
  string: OPS,
  // Any element matches (`!=`: no element equals). No ranges: an object would sit in many places.
  keywords: ["=", "!=", "prefix", "in"],
  bool: ["=", "!=", "in"],
};

const isOp = (op: unknown): op is Op => typeof op === "string" && (OPS as readonly string[]).includes(op);
const show = (v: unknown) => (JSON.stringify(v) ?? String(v)).slice(0, 80);

// ---- Validation ----

/** Where each part of each predicate of a text query starts (parseQueryText), for errors. */
export interface TextPositions {
  field: number;
  op: number;
  value: number;
}

/**
 * Check a query against `schema` plus the system fields and type its values; throws
 * InvalidQuery naming the fault (with its position when `positions` come from a text query).
 */
export function validateQuery(raw: unknown, schema: BucketSchema, positions?: TextPositions[]): ValidQuery {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new QueryError('a query is an object: {"where": [{"field", "op", "value"}], "sort", "limit", "cursor"}');
  const q = raw as Record<string, unknown>;
  const extra = Object.keys(q).filter((k) => !["where", "sort", "limit", "cursor", "allowPartial"].includes(k));
  if (extra.length) throw new QueryError(`unknown query property ${show(extra[0])}: a query has where, sort, limit, cursor and allowPartial`);
  const where: unknown = q.where ?? [];
  if (!Array.isArray(where)) throw new QueryError('"where" is a list of {"field", "op", "value"}');
  if (where.length > MAX_CONDITIONS) throw new QueryError(`a query has at most ${MAX_CONDITIONS} conditions; this one has ${where.length}`);

  const fail = (i: number, part: keyof TextPositions, message: string): never => {
    const at = positions?.[i]?.[part];
    throw at === undefined ? new QueryError(`where[${i}]: ${message}`) : new QueryError(message, at);
  };
  const resolve = (name: unknown, onError: (m: string) => never): { field: string; type: FieldType; system: boolean } => {
    if (typeof name !== "string") return onError(`a field is named by a string, not ${show(name)}`);
    if (isSystemField(name)) return { field: name, type: SYSTEM_FIELDS[name], system: true };
    const type = fieldType(schema, name);
    if (type) return { field: name, type, system: false };
    const known = Object.keys(schema.fields);
    return onError(`unknown field ${show(name)}: the system fields are ${Object.keys(SYSTEM_FIELDS).join(", ")}; the bucket's schema has ${known.length ? known.slice(0, 32).join(", ") : "no fields"}`);
  };

  const conditions = (where as unknown[]).map((p, i): Condition => {
    if (typeof p !== "object" || p === null || Array.isArray(p)) return fail(i, "field", 'a condition is {"field", "op", "value"}');
    const { field: name, op, value } = p as Record<string, unknown>;
    const { field, type, system } = resolve(name, (m) => fail(i, "field", m));
    if (!isOp(op)) return fail(i, "op", `unknown operator ${show(op)}: use ${OPS.join(" ")}`);
    if (!OPS_OF[type].includes(op)) return fail(i, "op", `"${op}" does not apply to ${field}, a ${type} field; use ${OPS_OF[type].join(" ")}`);
    const typeValue = (v: unknown) => {
      try {
        return typedValue(field, type, op, v);
      } catch (err) {
        return fail(i, "value", (err as Error).message);
      }
    };
    if (op !== "in") return { field, type, system, op, value: typeValue(value) };
    if (!Array.isArray(value) || value.length < 1 || value.length > MAX_IN) return fail(i, "value", `"in" takes a list of 1 to ${MAX_IN} values`);
    return { field, type, system, op, value: value.map(typeValue) };
  });

  let sort: ValidSort = { field: "key", type: "string", system: true, order: "asc" };
  if (q.sort !== undefined) {
    const s = q.sort as Record<string, unknown>;
    if (typeof s !== "object" || s === null || Array.isArray(s)) throw new QueryError('"sort" is {"field", "order": "asc" | "desc"}');
    const onError = (m: string): never => {
      throw new QueryError(`sort: ${m}`);
    };
    const resolved = resolve(s.field, onError);
    if (resolved.type === "keywords") onError(`${resolved.field} is a keywords field, which has no single value to sort by`);
    const order = s.order ?? "asc";
    if (order !== "asc" && order !== "desc") onError(`order is "asc" or "desc", not ${show(order)}`);
    sort = { ...resolved, order: order as "asc" | "desc" };
  }

  const limit = q.limit ?? DEFAULT_LIMIT;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new QueryError(`limit is a whole number from 1 to ${MAX_LIMIT}, not ${show(limit)}`);
  if (q.cursor !== undefined && (typeof q.cursor !== "string" || q.cursor.length > MAX_CURSOR)) throw new QueryError("cursor is the nextCursor of an earlier page, unchanged");
  if (q.allowPartial !== undefined && typeof q.allowPartial !== "boolean") throw new QueryError("allowPartial is true or false");

  const fields = [...new Set([...conditions, sort].filter((c) => !c.system).map((c) => c.field))];
  return { where: conditions, sort, limit, cursor: q.cursor as string | undefined, allowPartial: q.allowPartial === true, fields };
}

/** One value of a condition on `field` typed as `type`; throws a plain Error with the reason. */
function typedValue(field: string, type: FieldType, op: Op, v: unknown): EncodableValue {
  const wrong = (what: string) => new Error(`${field} is a ${type} field: its value must be ${what}, not ${show(v)}`);
  switch (type) {
    case "number":
      if (typeof v !== "number" || !Number.isFinite(v)) throw wrong("a finite number");
      return v === 0 ? 0 : v;
    case "date":
      if (!(typeof v === "string" || (typeof v === "number" && Number.isInteger(v)))) throw wrong("an RFC 3339 date or integer epoch ms");
      try {
        return parseDate(String(v));
      } catch (err) {
        throw new Error(`${field} is a date field: ${(err as Error).message}`);
      }
    case "bool":
      if (typeof v !== "boolean") throw wrong("true or false");
      return v;
    case "string":
    case "keywords": {
      if (typeof v !== "string") throw wrong(`a quoted string${op === "prefix" ? " (the prefix)" : ""}`);
      // A key is longer than a metadata string may be; the same bound as keys themselves.
      if (field === "key") {
        if (Buffer.byteLength(v, "utf8") > MAX_KEY_BYTES) throw new Error(`key values are at most ${MAX_KEY_BYTES} bytes`);
        return v;
      }
      try {
        return parseString(v);
      } catch (err) {
        throw new Error(`${field}: ${(err as Error).message}`);
      }
    }
  }
}

// ---- Evaluation ----

/** Compare two values of one field's type: numbers and dates by value, strings by UTF-8 bytes, false before true. */
export function compareValues(a: EncodableValue, b: EncodableValue): number {
  if (typeof a === "string" && typeof b === "string") return compareKeys(a, b);
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === "boolean" && typeof b === "boolean") return Number(a) - Number(b);
  throw new TypeError(`cannot compare ${typeof a} with ${typeof b}`);
}

/** The value of `field` of an object, or undefined when it has none. */
function valueOf(field: string, system: boolean, typed: Record<string, TypedValue>, sys: SystemFields): TypedValue | undefined {
  if (system) return sys[field as keyof SystemFields];
  return Object.hasOwn(typed, field) ? typed[field] : undefined;
}

function scalarMatches(v: EncodableValue, op: Op, target: EncodableValue | EncodableValue[]): boolean {
  if (op === "in") return (target as EncodableValue[]).some((t) => compareValues(v, t) === 0);
  const t = target as EncodableValue;
  if (op === "prefix") return (v as string).startsWith(t as string);
  const c = compareValues(v, t);
  switch (op) {
    case "=":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<":
      return c < 0;
    case "<=":
      return c <= 0;
    case ">":
      return c > 0;
    case ">=":
      return c >= 0;
  }
}

/**
 * Does one object meet every condition? An object without a field meets no condition on
 * it, `!=` included (it has no row in that field's index). On keywords a condition holds
 * if any element meets it, except `!=`, which holds if no element equals the value.
 */
export function matches(typed: Record<string, TypedValue>, system: SystemFields, where: readonly Condition[]): boolean {
  return where.every((c) => {
    const v = valueOf(c.field, c.system, typed, system);
    if (v === undefined) return false;
    if (Array.isArray(v)) return c.op === "!=" ? !v.some((e) => compareValues(e, c.value as EncodableValue) === 0) : v.some((e) => scalarMatches(e, c.op, c.value));
    return scalarMatches(v, c.op, c.value);
  });
}

/** Is the object in the query's answer: it meets the conditions and has the sort field (sorting scans that field's index). */
export function selects(q: ValidQuery, o: QueryObject): boolean {
  return valueOf(q.sort.field, q.sort.system, o.typed, o.system) !== undefined && matches(o.typed, o.system, q.where);
}

/**
 * The order of a query's results: by the sort field, ties by key, both in the sort's
 * direction (a descending answer is the ascending one reversed, as a backward scan of
 * "<value><key>" rows reads it). Objects without the sort field go last.
 */
export function compareResults(sort: ValidSort): (a: QueryObject, b: QueryObject) => number {
  const dir = sort.order === "desc" ? -1 : 1;
  return (a, b) => {
    const va = valueOf(sort.field, sort.system, a.typed, a.system) as EncodableValue | undefined;
    const vb = valueOf(sort.field, sort.system, b.typed, b.system) as EncodableValue | undefined;
    if (va === undefined || vb === undefined) {
      if (va !== vb) return va === undefined ? 1 : -1;
    } else {
      const c = compareValues(va, vb);
      if (c !== 0) return dir * c;
    }
    return dir * compareKeys(a.key, b.key);
  };
}

// ---- The text form ----

const FIELD_RE = /[A-Za-z0-9_-]+/y;
const WORD_RE = /[A-Za-z0-9_.:+-]+/y;
const NUMBER_RE = /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE_LIKE_RE = /^\d{4}-\d{2}-\d{2}([Tt].*)?$/;
const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** A text query parsed into the JSON model, with where each predicate's parts start (for validateQuery's errors). */
export interface ParsedText {
  query: Query;
  positions: TextPositions[];
}

/**
 * Parse the compact form of `?q=`: conditions joined by `and`, each `field op value` with
 * op one of `= != < <= > >= prefix in`; values are numbers, true/false, "quoted strings"
 * (JSON escapes), bare dates (2024-01-31 or 2024-01-31T12:00:00Z) and for `in` a list
 * `("a", "b")`. Errors give the 0-based position of the fault. An empty text is no condition.
 */
export function parseQueryText(text: string): ParsedText {
  if (text.length > MAX_QUERY_TEXT) throw new QueryError(`the query is ${text.length} chars long; at most ${MAX_QUERY_TEXT}`);
  let pos = 0;
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    pos += m[0].length;
    return m[0];
  };
  const found = () => (pos < text.length ? show(text.slice(pos, pos + 12)) : "the end");
  const isWordChar = (i: number) => i < text.length && /[A-Za-z0-9_-]/.test(text[i]);
  const word = (w: string): boolean => {
    if (text.slice(pos, pos + w.length).toLowerCase() !== w || isWordChar(pos + w.length)) return false;
    pos += w.length;
    return true;
  };

  const op = (): Op => {
    for (const sym of ["<=", ">=", "!=", "=", "<", ">"] as const) {
      if (text.startsWith(sym, pos)) {
        pos += sym.length;
        return sym;
      }
    }
    if (word("prefix")) return "prefix";
    if (word("in")) return "in";
    throw new QueryError(`expected an operator (${OPS.join(" ")}), found ${found()}`, pos);
  };

  const quoted = (): string => {
    const start = pos++;
    let out = "";
    while (pos < text.length) {
      const c = text[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c !== "\\") {
        out += c;
        pos++;
        continue;
      }
      const e = text[pos + 1];
      if (e === "u" && /^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) {
        out += String.fromCharCode(parseInt(text.slice(pos + 2, pos + 6), 16));
        pos += 6;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        pos += 2;
      } else {
        throw new QueryError(`unknown escape ${show(text.slice(pos, pos + 2))} in a string (use \\" \\\\ \\n \\t \\uXXXX)`, pos);
      }
    }
    throw new QueryError("unterminated string opened", start);
  };

  const value = (): RawValue => {
    skipSpace();
    if (text[pos] === '"') return quoted();
    const start = pos;
    const w = match(WORD_RE);
    if (w === undefined) throw new QueryError(`expected a value (a number, true, false, a date or a "quoted string"), found ${found()}`, pos);
    if (w === "true" || w === "false") return w === "true";
    if (NUMBER_RE.test(w)) {
      const n = Number(w);
      if (!Number.isFinite(n)) throw new QueryError(`number ${show(w)} is out of the range of a float64`, start);
      return n;
    }
    if (DATE_LIKE_RE.test(w)) return w; // a date's text; validation parses it for the field
    throw new QueryError(`unexpected word ${show(w)}: quote string values ("...")`, start);
  };

  const list = (): RawValue[] => {
    skipSpace();
    if (text[pos] !== "(") throw new QueryError(`"in" takes a list in parentheses, ("a", "b"); found ${found()}`, pos);
    pos++;
    const values: RawValue[] = [];
    for (;;) {
      values.push(value());
      if (values.length > MAX_IN) throw new QueryError(`"in" takes at most ${MAX_IN} values`, pos);
      skipSpace();
      if (text[pos] === ",") {
        pos++;
        continue;
      }
      if (text[pos] === ")") {
        pos++;
        return values;
      }
      throw new QueryError(`expected "," or ")" in the list, found ${found()}`, pos);
    }
  };

  const where: Predicate[] = [];
  const positions: TextPositions[] = [];
  skipSpace();
  while (pos < text.length) {
    if (where.length === MAX_CONDITIONS) throw new QueryError(`a query has at most ${MAX_CONDITIONS} conditions`, pos);
    const fieldAt = pos;
    const field = match(FIELD_RE);
    if (field === undefined) throw new QueryError(`expected a field name, found ${found()}`, pos);
    skipSpace();
    const opAt = pos;
    const o = op();
    skipSpace();
    const valueAt = pos;
    where.push({ field, op: o, value: o === "in" ? list() : value() });
    positions.push({ field: fieldAt, op: opAt, value: valueAt });
    skipSpace();
    if (pos === text.length) break;
    const joinAt = pos;
    if (word("or")) throw new QueryError('only "and" combines conditions; "or" is not supported', joinAt);
    if (!word("and")) throw new QueryError(`expected "and" or the end of the query, found ${found()}`, pos);
    skipSpace();
    if (pos === text.length) throw new QueryError('expected a condition after "and"', pos);
  }
  return { query: { where }, positions };
}

/** Parse and validate a text query in one step, errors at their positions. */
export function queryFromText(text: string, schema: BucketSchema, rest: Omit<Query, "where"> = {}): ValidQuery {
  const { query, positions } = parseQueryText(text);
  return validateQuery({ ...rest, where: query.where }, schema, positions);
}
