// The local part of the metadata index: this peer's replicas of index shards, in
// LevelDB. Every write is fsynced (sync: true) before it is acknowledged, and merges by
// last-writer-wins so replicas converge whatever order updates arrive in.
import { Level } from "level";
import { newer, type IndexEntry } from "../metadata/types.ts";

/** One row of a shard scan. */
export type ScanRow = [row: string, entry: IndexEntry];

/** Options of a shard scan: rows in key order after `after`, starting with `prefix`. */
export interface ScanOptions {
  prefix: string;
  after?: string;
  limit: number;
}

/** The local index store. */
export interface IndexStore {
  /** Merge an entry; true if it was newer than what we had and is now stored. */
  apply(shard: string, row: string, entry: IndexEntry): Promise<boolean>;
  get(shard: string, row: string): Promise<IndexEntry | null>;
  /** Rows of one shard in UTF-8 byte order, tombstones included. */
  scan(shard: string, opts: ScanOptions): Promise<ScanRow[]>;
  close(): Promise<void>;
}

const SEP = 0x01;

function encodeKey(shard: string, row: string): Buffer {
  return Buffer.concat([Buffer.from(shard), Buffer.of(SEP), Buffer.from(row, "utf8")]);
}

/** Open (or create) the index store in `dir`. */
export async function openIndexStore(dir: string): Promise<IndexStore> {
  const db = new Level<Buffer, IndexEntry>(dir, { keyEncoding: "buffer", valueEncoding: "json" });
  await db.open();
  // LWW needs read-compare-write to be atomic per row; writes to one row queue here.
  const locks = new Map<string, Promise<unknown>>();
  const withLock = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const prev = locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (locks.get(key) === tail) locks.delete(key);
    }
  };
  const get = async (k: Buffer) => (await db.get(k)) ?? null;

  return {
    apply(shard, row, entry) {
      const k = encodeKey(shard, row);
      return withLock(k.toString("latin1"), async () => {
        if (!newer(entry, await get(k))) return false;
        await db.put(k, entry, { sync: true });
        return true;
      });
    },
    get: (shard, row) => get(encodeKey(shard, row)),
    async scan(shard, { prefix, after, limit }) {
      const base = encodeKey(shard, prefix);
      const afterKey = after === undefined ? undefined : encodeKey(shard, after);
      const startAfter = afterKey && Buffer.compare(afterKey, base) >= 0 ? afterKey : undefined;
      // 0xFF never occurs in UTF-8, so prefix + 0xFF bounds every row that starts with prefix.
      const end = Buffer.concat([base, Buffer.of(0xff)]);
      const range = startAfter ? { gt: startAfter, lt: end } : { gte: base, lt: end };
      const skip = shard.length + 1;
      const rows: ScanRow[] = [];
      for await (const [k, v] of db.iterator({ ...range, limit })) rows.push([k.subarray(skip).toString("utf8"), v]);
      return rows;
    },
    close: () => db.close(),
  };
}
