// Sorted, paginated listing across hash shards. Each round asks a quorum of replicas of
// every shard for the next few rows after the cursor (one request per peer), merges
// replicas by last-writer-wins and shards by key order, and keeps only rows up to the
// smallest "last row" of any shard that may have more: below that bound the merge is
// complete. Rounds repeat until the page (plus one row, to know if there is more) is full.
import { QuorumError } from "../errors.ts";
import type { Placement } from "../placement/placement.ts";
import { admissibleAt, type IndexClient } from "./index-client.ts";
import { compareKeys, deletesAreFinal } from "./keys.ts";
import { newer, type IndexEntry } from "./types.ts";

/** Above every key that starts with a given prefix (used to skip a rolled-up prefix). */
export const AFTER_PREFIX = "\u{10FFFF}";

/** What a listing reads from: the index and the ring. */
export interface ListingDeps {
  index: IndexClient;
  placement: Placement;
  self: string;
}

/** A merged batch of rows, complete up to `bound` (null bound: nothing more anywhere). */
interface Batch {
  rows: Array<[row: string, entry: IndexEntry]>;
  bound: string | null;
}

/**
 * Ask a quorum of replicas of every shard (its voters: they meet every acknowledged
 * write's), this peer first when it is one, with one call per peer per pass; a shard
 * whose replica fails is asked of its next replica in the next pass. Answers, by shard,
 * one per replica asked; QuorumError when a shard runs out of replicas.
 */
export async function askShardQuorums<T>(
  deps: Pick<ListingDeps, "placement" | "self">,
  shards: string[],
  what: string,
  ask: (peer: string, shards: string[]) => Promise<Record<string, T>>,
): Promise<Map<string, T[]>> {
  const candidates = new Map(shards.map((s) => {
    const reps = deps.placement.shardVoters(s);
    const rank = (p: string) => (p === deps.self ? 0 : deps.placement.reachable(p) ? 1 : 2);
    return [s, [...reps].sort((a, b) => rank(a) - rank(b))] as const;
  }));
  const answers = new Map<string, T[]>(shards.map((s) => [s, []]));
  const tried = new Map<string, number>(shards.map((s) => [s, 0]));
  let pending = shards;
  while (pending.length) {
    const byPeer = new Map<string, string[]>();
    for (const s of pending) {
      const reps = candidates.get(s)!;
      const want = deps.placement.shardQuorum(s) - answers.get(s)!.length;
      const next = reps.slice(tried.get(s)!, tried.get(s)! + want);
      if (next.length < want) throw new QuorumError(`${what}: shard ${s} has too few reachable replicas`);
      tried.set(s, tried.get(s)! + next.length);
      for (const p of next) byPeer.set(p, [...(byPeer.get(p) ?? []), s]);
    }
    await Promise.all(
      [...byPeer].map(async ([peer, list]) => {
        try {
          const res = await ask(peer, list);
          for (const s of list) if (res[s] !== undefined) answers.get(s)!.push(res[s]);
        } catch {
          // the shard's next replica is tried in the next pass
        }
      }),
    );
    pending = shards.filter((s) => answers.get(s)!.length < deps.placement.shardQuorum(s));
  }
  return answers;
}

/** Scan `shards` for rows starting with `rowPrefix` after `after`, merged. */
async function fetchBatch(deps: ListingDeps, shards: string[], rowPrefix: string, after: string | undefined, per: number, fields?: string[]): Promise<Batch> {
  const answers = await askShardQuorums(deps, shards, "listing", (peer, list) => deps.index.scanOn(peer, { shards: list, prefix: rowPrefix, after, limit: per, fields }));

  let bound: string | null = null;
  const merged = new Map<string, IndexEntry>();
  const now = Date.now();
  for (const [shard, replies] of answers) {
    const final = deletesAreFinal(shard);
    for (const rows of replies) {
      if (rows.length >= per) {
        const last = rows[rows.length - 1][0];
        if (bound === null || compareKeys(last, bound) < 0) bound = last;
      }
      // A row from the future counts toward the bound above (it was scanned) but is not believed.
      for (const [row, entry] of rows) if (admissibleAt(entry, now) && newer(entry, merged.get(row), final)) merged.set(row, entry);
    }
  }
  const rows = [...merged].filter(([row]) => bound === null || compareKeys(row, bound) <= 0).sort((a, b) => compareKeys(a[0], b[0]));
  return { rows, bound };
}

/** One listed row (tombstones are never returned). */
export interface ListedRow<V> {
  key: string;
  value: V;
}

/** A page of a listing. */
export interface ListPage<V> {
  rows: ListedRow<V>[];
  prefixes: string[];
  /** Resume after this key (pass back as `after`); null when the listing is complete. */
  next: string | null;
}

/** Parameters of a listing. */
export interface ListParams {
  shards: string[];
  /** Rows are `rowPrefix + key`; keys are reported without it. */
  rowPrefix: string;
  prefix: string;
  delimiter?: string;
  limit: number;
  after?: string;
  /** Only these fields of each value are fetched (all when omitted). */
  fields?: string[];
}

/** List keys in order with S3 semantics: prefix, delimiter roll-up, limit and a resume point. */
export async function listMerged<V>(deps: ListingDeps, p: ListParams): Promise<ListPage<V>> {
  type Item = { key: string; value: V } | { prefix: string };
  const items: Item[] = [];
  const per = Math.min(1000, Math.max(8, Math.ceil(((p.limit + 1) * 1.5) / p.shards.length) + 2));
  let after = p.after !== undefined && compareKeys(p.after, p.prefix) >= 0 ? p.after : undefined;
  let lastPrefix: string | undefined;

  while (items.length <= p.limit) {
    const batch = await fetchBatch(deps, p.shards, p.rowPrefix + p.prefix, after === undefined ? undefined : p.rowPrefix + after, per, p.fields);
    for (const [row, entry] of batch.rows) {
      const key = row.slice(p.rowPrefix.length);
      if (entry.value === null) continue;
      if (p.delimiter) {
        const at = key.indexOf(p.delimiter, p.prefix.length);
        if (at >= 0) {
          const common = key.slice(0, at + p.delimiter.length);
          if (common !== lastPrefix) {
            items.push({ prefix: common });
            lastPrefix = common;
            if (items.length > p.limit) break;
          }
          continue;
        }
      }
      items.push({ key, value: entry.value as V });
      if (items.length > p.limit) break;
    }
    if (batch.bound === null || items.length > p.limit) break;
    after = batch.bound.slice(p.rowPrefix.length);
    // Skip the rest of a rolled-up prefix instead of reading every key under it.
    if (lastPrefix && compareKeys(after, lastPrefix) >= 0 && after.startsWith(lastPrefix)) after = lastPrefix + AFTER_PREFIX;
  }

  const page = items.slice(0, p.limit);
  const more = items.length > p.limit;
  const last = page[page.length - 1];
  const next = !more || !last ? null : "prefix" in last ? last.prefix + AFTER_PREFIX : last.key;
  return {
    rows: page.filter((i): i is { key: string; value: V } => "key" in i),
    prefixes: page.filter((i): i is { prefix: string } => "prefix" in i).map((i) => i.prefix),
    next,
  };
}

/** What a whole listing needs: no limit, delimiter or resume point. */
export type WholeListing = Omit<ListParams, "prefix" | "delimiter" | "limit" | "after"> & {
  prefix?: string;
  /** Rows per page (WHOLE_LISTING_PAGE by default): smaller for a walk that usually stops after a few. */
  pageSize?: number;
};

/** Rows per page of a whole listing (the most one listing round asks a replica for). */
const WHOLE_LISTING_PAGE = 1000;

/** Every row of a listing, one page at a time (memory: one page, whatever the listing's length). */
export async function* listPages<V>(deps: ListingDeps, p: WholeListing): AsyncGenerator<ListedRow<V>[]> {
  let after: string | undefined;
  do {
    const page = await listMerged<V>(deps, { ...p, prefix: p.prefix ?? "", limit: p.pageSize ?? WHOLE_LISTING_PAGE, after });
    yield page.rows;
    after = page.next ?? undefined;
  } while (after !== undefined);
}

/** Every row of a listing at once: for listings small by nature (keys, buckets, the parts of one upload). */
export async function listAll<V>(deps: ListingDeps, p: WholeListing): Promise<ListedRow<V>[]> {
  const out: ListedRow<V>[] = [];
  for await (const rows of listPages<V>(deps, p)) out.push(...rows);
  return out;
}
