// The secondary rows of one object: what a replica writes beside a manifest, in the same
// batch (src/store/index-store.ts), for the buckets that have a search schema. One row per
// indexed value, named "<bucket>\0<field>\0<encoded value><key>" (src/metadata/keys.ts),
// so a field's rows sort by value then key; a keywords value has one row per element.
// A row is its name only: a query reads the objects it finds from their manifests, in
// batches, so a write adds a few short keys to its batch rather than copies of the object.
import { fieldRowPrefix, objectRowPrefix } from "../metadata/keys.ts";
import type { IndexEntry, ObjectManifest } from "../metadata/types.ts";
import { encodeValue, type EncodableValue } from "./encoding.ts";
import { parseValue, SYSTEM_FIELDS, type FieldType, type SystemFields, type TypedValue } from "./schema.ts";

/** What a query result needs of an object, from its manifest. */
export interface ObjectSummary {
  /** The manifest's stamp: replicas' answers are merged by it. */
  ts: string;
  size: number;
  etag: string;
  lastModified: number;
  contentType: string;
  meta: Record<string, string>;
}

/**
 * The system fields that have secondary rows, so a query can sort by them (`key` needs
 * none: manifests sort by key). contentType and etag filter but do not sort: rows for them
 * too cost every write in an indexed bucket a fifth of its speed (measured: 71% of
 * schema-less PUTs/s with them, 89% without), for orders nobody asks for.
 */
export const INDEXED_SYSTEM_FIELDS = ["size", "lastModified"] as const;

/** The fields a bucket's rows are derived for, as this peer knows its schema. */
export type DerivedFields = Record<string, FieldType>;

/** The summary of a manifest entry. */
export function summaryOf(entry: IndexEntry): ObjectSummary {
  const m = entry.value as ObjectManifest;
  return { ts: entry.ts, size: m.size, etag: m.etag, lastModified: m.lastModified, contentType: m.contentType, meta: m.meta ?? {} };
}

/** An object's system fields from its summary. */
export const systemFieldsOf = (key: string, s: ObjectSummary): SystemFields => ({ key, size: s.size, lastModified: s.lastModified, contentType: s.contentType, etag: s.etag });

/**
 * The typed values of `meta` for `fields`; a value that does not parse is left out (it
 * was stored before the field had its type, so it is simply not indexed).
 */
export function typedMeta(meta: Record<string, string>, fields: DerivedFields): Record<string, TypedValue> {
  const out: Record<string, TypedValue> = {};
  for (const name in fields) {
    if (!Object.hasOwn(meta, name)) continue;
    try {
      out[name] = parseValue(fields[name], meta[name]);
    } catch {
      // not indexed: see above
    }
  }
  return out;
}

/** The encoded values of one typed value (one per keyword). */
function encodings(type: FieldType, value: TypedValue): string[] {
  return Array.isArray(value) ? value.map((v) => encodeValue(type, v)) : [encodeValue(type, value as EncodableValue)];
}

/** The names of the secondary rows of the manifest row `row` (`<bucket>\0<key>`) of a bucket whose derived fields are `fields`. */
export function deriveObjectRows(bucket: string, row: string, entry: IndexEntry, fields: DerivedFields): string[] {
  const key = row.slice(objectRowPrefix(bucket).length);
  const summary = summaryOf(entry);
  const out: string[] = [];
  const system = systemFieldsOf(key, summary);
  for (const name of INDEXED_SYSTEM_FIELDS) {
    const value = system[name];
    // A manifest from before its field's checks (a hand-made one) could hold anything.
    if (typeof value !== "number") continue;
    try {
      out.push(fieldRowPrefix(bucket, name) + encodeValue(SYSTEM_FIELDS[name], value) + key);
    } catch {
      // an unindexable value (a non-integer date): not indexed
    }
  }
  const typed = typedMeta(summary.meta, fields);
  for (const name in typed) {
    for (const enc of encodings(fields[name], typed[name])) out.push(fieldRowPrefix(bucket, name) + enc + key);
  }
  return out;
}
