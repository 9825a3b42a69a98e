// A replica's side of a search: the matches of one query in one index shard, in the
// query's order, from the cursor on. Every answer row carries a position ("pos"): the
// name of the object's row in the sort field's index without its prefix, "<encoded
// value><key>" (or just the key when sorting by key), so positions compare as byte
// strings (compareKeys) in sort order and the coordinator merges shards and replicas by them.
//
// Two ways to find the candidates, the first that applies:
//  1. narrow: a condition on another indexed field whose index range holds at most
//     NARROW_CAP rows (an equality, a short `in`, a rare prefix or range) gives every
//     candidate at once; they are filtered, sorted, and the answer is complete or cut at `limit`;
//  2. ordered scan: the sort field's index (manifests themselves for `key`), from the
//     cursor, within the range the sort field's own conditions allow, filtered as it goes,
//     until `limit` matches or `budget` rows are read.
// Index rows are names only: the candidates' manifests are read in one batch per step and
// judged as they are stored now. Either way the answer says how far it is complete
// (`reached`): every match up to that position is in it; null: nothing more in the shard.
import { compareKeys, fieldRowPrefix, objectRow, objectRowPrefix } from "../metadata/keys.ts";
import type { IndexEntry } from "../metadata/types.ts";
import type { ByteRange, IndexStore } from "../store/index-store.ts";
import { decodeValue, encodeStringPrefix, encodeValue, type EncodableValue } from "./encoding.ts";
import { INDEXED_SYSTEM_FIELDS, summaryOf, systemFieldsOf, typedMeta, type DerivedFields, type ObjectSummary } from "./derive.ts";
import type { IndexView } from "./indexer.ts";
import { selects, type Condition, type ValidQuery, type ValidSort } from "./query.ts";
import type { FieldType } from "./schema.ts";

/** What a replica is asked: the validated query's conditions and order, a resume position and how much to do. */
export interface ShardQuery {
  bucket: string;
  where: Condition[];
  sort: ValidSort;
  /** Only positions after this one (before it, descending). */
  after?: string;
  /** Matches wanted per shard. */
  limit: number;
  /** Most index rows read per shard by an ordered scan. */
  budget: number;
}

/** One match: its key, its position, and what a result shows of it. */
export type ShardMatch = [key: string, pos: string, summary: ObjectSummary];

/** A shard's answer. */
export interface ShardAnswer {
  rows: ShardMatch[];
  /** Complete up to this position; null: complete. */
  reached: string | null;
}

/** Rows read from LevelDB per step of an ordered scan. */
const PAGE = 256;
/** Most rows a narrowing condition may select in one shard before a scan is cheaper. */
export const NARROW_CAP = 1000;
/** Narrowing conditions tried per shard. */
const NARROW_TRIES = 2;

const HIGH = Buffer.of(0xff);
const ZERO = Buffer.of(0x00);
const utf8 = (s: string) => Buffer.from(s, "utf8");

/** Does the sort field (or a narrowing field) have a complete index here? */
export const usable = (view: IndexView | undefined, field: string, type: FieldType, system: boolean): boolean =>
  hasRows(view, field, type, system) && (system || view!.ready.has(field));

/** Do this replica's rows of `field` exist at all (complete or being built) for `type`? System rows are built all at once. */
const hasRows = (view: IndexView | undefined, field: string, type: FieldType, system: boolean) =>
  system ? field === "key" || (indexedSystemField(field) && view?.systemReady === true) : view?.fields[field] === type;

const indexedSystemField = (field: string) => (INDEXED_SYSTEM_FIELDS as readonly string[]).includes(field);

/** The encoded form of a value of `type` within a position (keys are themselves). */
const enc = (field: string, type: FieldType, v: EncodableValue) => (field === "key" ? (v as string) : encodeValue(type, v));

/**
 * The byte range (relative to the field's rows) the condition `c` allows, or undefined
 * when it allows no single range (`!=`). In positions a value is followed by the key:
 * `= v` is every row starting with enc(v); a key is a whole position, so `= k` is [k, k+0x00).
 */
function rangeOf(c: Condition): { gte: Buffer; lt: Buffer } | undefined {
  const isKey = c.field === "key";
  const at = (v: EncodableValue) => utf8(enc(c.field, c.type, v));
  /** First position after every one with value v. */
  const past = (v: EncodableValue) => Buffer.concat([at(v), isKey ? ZERO : HIGH]);
  switch (c.op) {
    case "=":
      return { gte: at(c.value as EncodableValue), lt: past(c.value as EncodableValue) };
    case "<":
      return { gte: Buffer.alloc(0), lt: at(c.value as EncodableValue) };
    case "<=":
      return { gte: Buffer.alloc(0), lt: past(c.value as EncodableValue) };
    case ">":
      return { gte: past(c.value as EncodableValue), lt: HIGH };
    case ">=":
      return { gte: at(c.value as EncodableValue), lt: HIGH };
    case "prefix": {
      const p = utf8(isKey ? (c.value as string) : encodeStringPrefix(c.value as string));
      return { gte: p, lt: Buffer.concat([p, HIGH]) };
    }
    case "in": {
      const values = c.value as EncodableValue[];
      return { gte: values.map(at).reduce((a, b) => (Buffer.compare(a, b) <= 0 ? a : b)), lt: values.map(past).reduce((a, b) => (Buffer.compare(a, b) >= 0 ? a : b)) };
    }
    case "!=":
      return undefined;
  }
}

/** Ranges of the rows that may meet `c`: one per value for `in`, so a narrow collects each exactly. */
function rangesOf(c: Condition): Array<{ gte: Buffer; lt: Buffer }> {
  if (c.op !== "in") return [rangeOf(c)!];
  return [...new Set(c.value as EncodableValue[])].map((v) => rangeOf({ ...c, op: "=", value: v })!);
}

const maxBuf = (a: Buffer, b: Buffer) => (Buffer.compare(a, b) >= 0 ? a : b);
const minBuf = (a: Buffer, b: Buffer) => (Buffer.compare(a, b) <= 0 ? a : b);

/** Evaluate a candidate; its position when it is a match, else undefined. */
function evaluate(q: Pick<ShardQuery, "where" | "sort">, types: DerivedFields, key: string, s: ObjectSummary): string | undefined {
  const typed = typedMeta(s.meta, types);
  const system = systemFieldsOf(key, s);
  if (!selects({ where: q.where, sort: q.sort } as ValidQuery, { key, typed, system })) return undefined;
  if (q.sort.field === "key") return key;
  const v = (q.sort.system ? system[q.sort.field as keyof typeof system] : typed[q.sort.field]) as EncodableValue;
  try {
    return encodeValue(q.sort.type, v) + key;
  } catch {
    return undefined; // a value no row could hold (a hand-made manifest's): not in the order
  }
}

/** The user fields a query reads, with their types (to type each candidate's metadata). */
export function queryTypes(q: Pick<ShardQuery, "where" | "sort">): DerivedFields {
  const out: DerivedFields = {};
  for (const c of [...q.where, q.sort]) if (!c.system) out[c.field] = c.type;
  return out;
}

/** The match of `key` whose manifest entry is `entry` (as stored now), or undefined when it does not match. */
export function matchPosition(q: Pick<ShardQuery, "where" | "sort">, key: string, entry: IndexEntry | null, types = queryTypes(q)): ShardMatch | undefined {
  if (!entry || entry.value === null) return undefined;
  const s = summaryOf(entry);
  const pos = evaluate(q, types, key, s);
  return pos === undefined ? undefined : [key, pos, s];
}

/** The manifest entries of `keys` in this replica's shard, read as one batch. */
function readManifests(store: IndexStore, shard: string, bucket: string, keys: string[]): Promise<Array<IndexEntry | null>> {
  return Promise.all(keys.map((key) => store.get(shard, objectRow(bucket, key))));
}

/** Is position `a` before `b` in the query's order? */
export const before = (order: "asc" | "desc", a: string, b: string) => (order === "asc" ? compareKeys(a, b) < 0 : compareKeys(a, b) > 0);

/** Answer `q` from shard `shard` of this replica, whose index is as `view` says (`narrowCap`: tests try small ones). */
export async function queryShard(store: IndexStore, view: IndexView | undefined, shard: string, q: ShardQuery, narrowCap = NARROW_CAP): Promise<ShardAnswer> {
  const types = queryTypes(q);
  const narrowed = await narrow(store, view, shard, q, types, narrowCap);
  if (narrowed) return narrowed;
  return orderedScan(store, view, shard, q, types);
}

/** Path 1: gather every candidate through a selective condition on another ready index. */
async function narrow(store: IndexStore, view: IndexView | undefined, shard: string, q: ShardQuery, types: DerivedFields, cap: number): Promise<ShardAnswer | undefined> {
  const rank = { "=": 0, in: 1, prefix: 2, "<": 3, "<=": 3, ">": 3, ">=": 3, "!=": 9 } as const;
  const options = q.where
    .filter((c) => c.op !== "!=" && c.field !== q.sort.field && c.field !== "key" && usable(view, c.field, c.type, c.system))
    .sort((a, b) => rank[a.op] - rank[b.op])
    .slice(0, NARROW_TRIES);
  for (const c of options) {
    const name0 = fieldRowPrefix(q.bucket, c.field);
    const prefix = utf8(name0);
    const candidates = new Set<string>();
    let over = false;
    for (const r of rangesOf(c)) {
      const room = cap + 1 - candidates.size;
      const names = await store.scanDerived(shard, { gte: Buffer.concat([prefix, r.gte]), lt: Buffer.concat([prefix, r.lt]), limit: room });
      for (const name of names) {
        const key = keyOfRow(name.slice(name0.length), c.type);
        if (key !== undefined) candidates.add(key);
      }
      if (names.length >= room) {
        over = true;
        break;
      }
    }
    if (over) continue;
    const keys = [...candidates];
    const entries = await readManifests(store, shard, q.bucket, keys);
    const matches: ShardMatch[] = [];
    keys.forEach((key, i) => {
      const m = matchPosition(q, key, entries[i], types);
      if (m && (q.after === undefined || before(q.sort.order, q.after, m[1]))) matches.push(m);
    });
    matches.sort((a, b) => (before(q.sort.order, a[1], b[1]) ? -1 : 1));
    if (matches.length <= q.limit) return { rows: matches, reached: null };
    const rows = matches.slice(0, q.limit);
    return { rows, reached: rows[rows.length - 1][1] };
  }
  return undefined;
}

/** The key at the end of a position: what follows the encoded value; undefined if the row is not one of `type`'s. */
function keyOfRow(pos: string, type: FieldType): string | undefined {
  try {
    return pos.slice(decodeValue(type, pos).end);
  } catch {
    return undefined; // a row left by an earlier type of the field, being cleared: not a candidate
  }
}

/** Path 2: walk the sort field's index in order from the cursor. */
async function orderedScan(store: IndexStore, view: IndexView | undefined, shard: string, q: ShardQuery, types: DerivedFields): Promise<ShardAnswer> {
  const sort = q.sort;
  const byKey = sort.field === "key";
  // A replica that has no rows for the sort field (its index not even started) has nothing to scan;
  // the coordinator refuses such answers unless the client allowed partial ones.
  if (!hasRows(view, sort.field, sort.type, sort.system)) return { rows: [], reached: null };
  const name0 = byKey ? objectRowPrefix(q.bucket) : fieldRowPrefix(q.bucket, sort.field);
  const prefix = utf8(name0);
  // The sort field's own conditions bound the scan.
  let gte: Buffer = Buffer.alloc(0);
  let lt: Buffer = HIGH;
  for (const c of q.where) {
    if (c.field !== sort.field) continue;
    const r = rangeOf(c);
    if (!r) continue;
    gte = maxBuf(gte, r.gte);
    lt = minBuf(lt, r.lt);
  }
  if (q.after !== undefined) {
    const at = utf8(q.after);
    if (sort.order === "asc") gte = maxBuf(gte, Buffer.concat([at, ZERO]));
    else lt = minBuf(lt, at);
  }
  const rows: ShardMatch[] = [];
  let read = 0;
  // The first step reads about what an unfiltered answer needs; each further step twice as much.
  let step = Math.min(PAGE, q.limit + 8);
  for (;; step = Math.min(PAGE, step * 2)) {
    if (Buffer.compare(gte, lt) >= 0) return { rows, reached: null };
    const range: ByteRange = { gte: Buffer.concat([prefix, gte]), lt: Buffer.concat([prefix, lt]), reverse: sort.order === "desc", limit: Math.min(step, q.budget - read) };
    let page: string[];
    let entries: Array<IndexEntry | null>;
    let keys: string[];
    if (byKey) {
      const rows = await store.scanRows(shard, range);
      page = rows.map(([name]) => name);
      keys = page.map((name) => name.slice(name0.length));
      entries = rows.map(([, e]) => e);
    } else {
      page = await store.scanDerived(shard, range);
      // An undecodable row (see keyOfRow) names no object: its key is one no manifest has.
      keys = page.map((name) => keyOfRow(name.slice(name0.length), sort.type) ?? "");
      entries = await readManifests(store, shard, q.bucket, keys);
    }
    read += page.length;
    let lastPos = "";
    for (const [i, name] of page.entries()) {
      lastPos = name.slice(name0.length);
      // An object changed since the scan read its row is skipped here: its row now stands elsewhere.
      const m = matchPosition(q, keys[i], entries[i], types);
      if (m && m[1] === lastPos) rows.push(m);
      if (rows.length >= q.limit) return { rows, reached: lastPos };
    }
    if (page.length < range.limit) return { rows, reached: null };
    if (read >= q.budget) return { rows, reached: lastPos };
    const last = utf8(lastPos);
    if (sort.order === "asc") gte = Buffer.concat([last, ZERO]);
    else lt = last;
  }
}
