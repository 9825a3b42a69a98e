// A model of search for tests: random typed metadata and random queries from a seeded
// generator, and the brute-force answer to a query over the objects a test wrote, with
// the same predicate and order functions the peers use (src/search/query.ts), so a test
// compares the distributed, indexed answer with an evaluation that has no index at all.
import { compareResults, selects, validateQuery, type Query, type RawValue, type ValidQuery } from "../../src/search/query.ts";
import { parseValue, type BucketSchema, type FieldType, type TypedValue } from "../../src/search/schema.ts";

/** The five-type schema of the model tests and the bench. */
export const MODEL_SCHEMA: BucketSchema = { fields: { year: "number", released: "date", title: "string", draft: "bool", tags: "keywords" } };

/** What a test wrote of one object. */
export interface ModelObject {
  key: string;
  size: number;
  etag: string;
  lastModified: number;
  contentType: string;
  meta: Record<string, string>;
}

const TITLES = ["Mesh", "Mesh Two", "Meshes", "Alpha", "alpha", "Beta", "Zulu", "Mango", "Ma", "M"];
const TAGS = ["red", "green", "blue", "cyan", "drama", "doc", "docs", "x"];
const DAY = 86_400_000;

/** A random integer in [0, n). */
const pick = (random: () => number, n: number) => Math.floor(random() * n);

function randomNumber(random: () => number): number {
  const r = random();
  if (r < 0.7) return 1950 + pick(random, 80);
  if (r < 0.85) return -pick(random, 1000) / 8;
  return Math.round((random() - 0.5) * 1e6) / 100;
}

/** A date in ms: before and after 1970, whole days mostly. */
const randomDate = (random: () => number) => (pick(random, 40_000) - 15_000) * DAY + (random() < 0.3 ? pick(random, DAY) : 0);

/** Random metadata for the model schema: each field present most of the time, as text a PUT carries. */
export function randomMeta(random: () => number): Record<string, string> {
  const meta: Record<string, string> = {};
  if (random() < 0.9) meta.year = String(randomNumber(random));
  if (random() < 0.85) {
    const ms = randomDate(random);
    meta.released = random() < 0.5 ? new Date(ms).toISOString() : String(ms);
  }
  if (random() < 0.85) meta.title = TITLES[pick(random, TITLES.length)] + (random() < 0.5 ? ` ${pick(random, 20)}` : "");
  if (random() < 0.8) meta.draft = random() < 0.3 ? "true" : "false";
  if (random() < 0.8) meta.tags = [...new Set(Array.from({ length: 1 + pick(random, 3) }, () => TAGS[pick(random, TAGS.length)]))].join(",");
  if (random() < 0.2) meta.note = "not in the schema";
  return meta;
}

const OPS: Record<FieldType, string[]> = {
  number: ["=", "!=", "<", "<=", ">", ">=", "in"],
  date: ["=", "!=", "<", "<=", ">", ">=", "in"],
  string: ["=", "!=", "<", "<=", ">", ">=", "prefix", "in"],
  keywords: ["=", "!=", "prefix", "in"],
  bool: ["=", "!=", "in"],
};

function randomValue(random: () => number, field: string, type: FieldType, op: string, keys: readonly string[]): RawValue {
  switch (type) {
    case "number":
      return field === "size" ? pick(random, 64) : randomNumber(random);
    case "date":
      return field === "lastModified" ? Date.now() - pick(random, 60_000) : random() < 0.5 ? randomDate(random) : new Date(randomDate(random)).toISOString();
    case "bool":
      return random() < 0.5;
    case "keywords":
      return op === "prefix" ? TAGS[pick(random, TAGS.length)].slice(0, 1 + pick(random, 2)) : TAGS[pick(random, TAGS.length)];
    case "string": {
      if (field === "key") {
        const k = keys[pick(random, keys.length)] ?? "k";
        return op === "prefix" ? k.slice(0, 1 + pick(random, 3)) : k;
      }
      if (field === "contentType") return random() < 0.5 ? "text/plain" : "application/octet-stream";
      const t = TITLES[pick(random, TITLES.length)];
      return op === "prefix" ? t.slice(0, 1 + pick(random, t.length)) : t;
    }
  }
}

const QUERY_FIELDS: Array<[string, FieldType]> = [
  ["year", "number"],
  ["released", "date"],
  ["title", "string"],
  ["draft", "bool"],
  ["tags", "keywords"],
  ["year", "number"],
  ["tags", "keywords"],
  ["key", "string"],
  ["size", "number"],
  ["contentType", "string"],
];
const SORTS: Array<[string, FieldType]> = [
  ["key", "string"],
  ["year", "number"],
  ["released", "date"],
  ["title", "string"],
  ["size", "number"],
  ["lastModified", "date"],
];

/** A random query (JSON model) over the model schema and the system fields, with `limit` per page. */
export function randomQuery(random: () => number, keys: readonly string[], limit: number): Query {
  const where = Array.from({ length: pick(random, 4) }, () => {
    const [field, type] = QUERY_FIELDS[pick(random, QUERY_FIELDS.length)];
    const op = OPS[type][pick(random, OPS[type].length)];
    const value = op === "in" ? Array.from({ length: 1 + pick(random, 4) }, () => randomValue(random, field, type, "=", keys)) : randomValue(random, field, type, op, keys);
    return { field, op, value } as Query["where"][number];
  });
  const [field] = SORTS[pick(random, SORTS.length)];
  return { where, sort: { field, order: random() < 0.5 ? "asc" : "desc" }, limit };
}

/** The typed values of `meta` for the schema's fields; values that do not parse are left out (the peers do the same). */
function typedOf(meta: Record<string, string>, schema: BucketSchema): Record<string, TypedValue> {
  const out: Record<string, TypedValue> = {};
  for (const [name, type] of Object.entries(schema.fields)) {
    if (!Object.hasOwn(meta, name)) continue;
    try {
      out[name] = parseValue(type, meta[name]);
    } catch {
      // not indexed
    }
  }
  return out;
}

/** The whole answer to `q` over `objects`, by brute force: every key in order. */
export function bruteForce(objects: Iterable<ModelObject>, q: Query | ValidQuery, schema: BucketSchema = MODEL_SCHEMA): string[] {
  const valid = "fields" in q ? (q as ValidQuery) : validateQuery({ ...q, limit: 1 }, schema);
  const candidates = [...objects].map((o) => ({
    key: o.key,
    typed: typedOf(o.meta, schema),
    system: { key: o.key, size: o.size, lastModified: o.lastModified, contentType: o.contentType, etag: o.etag },
  }));
  return candidates.filter((o) => selects(valid, o)).sort(compareResults(valid.sort)).map((o) => o.key);
}
