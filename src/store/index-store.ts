// The local part of the metadata index: this peer's replicas of index shards, in
// LevelDB. Every write is fsynced (sync: true) before it is acknowledged, and merges by
// last-writer-wins so replicas converge whatever order updates arrive in.
//
// For anti-entropy each shard keeps DIGEST_BUCKETS running digests: the XOR of a hash of
// (row, timestamp) over the rows whose name hashes into that bucket. Replicas compare the
// digests and exchange only the rows of buckets that differ.
import { StartupError } from "../errors.ts";
import { fileCause } from "../util/file-cause.ts";
import { Level } from "level";
import { createBatcher } from "../util/batcher.ts";
import { newer, type IndexEntry } from "./index-entry.ts";

/** One row of a shard scan. */
export type ScanRow = [row: string, entry: IndexEntry];

/** Options of a shard scan: rows in key order after `after`, starting with `prefix`. */
export interface ScanOptions {
  prefix: string;
  after?: string;
  limit: number;
}

/** How rows merge, which the layer above decides (src/metadata/keys.ts). */
export interface MergeRules {
  /** Is a delete final in this shard (it outranks any value, whatever the stamps: see `newer`)? */
  deletesAreFinal(shard: string): boolean;
}

/** Digest buckets per shard. */
export const DIGEST_BUCKETS = 64;

/** The local index store. */
export interface IndexStore {
  /** Merge an entry; true if it replaced what we had (`newer`) and is now stored. */
  apply(shard: string, row: string, entry: IndexEntry): Promise<boolean>;
  get(shard: string, row: string): Promise<IndexEntry | null>;
  /** Rows of one shard in UTF-8 byte order, tombstones included. */
  scan(shard: string, opts: ScanOptions): Promise<ScanRow[]>;
  /** Shards that hold at least one row here. */
  shards(): string[];
  /** The shard's per-bucket digests (hex; "0" for an empty bucket). */
  digests(shard: string): string[];
  /** Every row of a shard whose digest bucket is in `buckets` (all rows when omitted). */
  rowsIn(shard: string, buckets?: number[]): Promise<ScanRow[]>;
  /** Delete rows still at the given timestamps (handoff to new owners, dropped tombstones). */
  drop(shard: string, rows: Array<[row: string, ts: string]>): Promise<void>;
  /**
   * Replace the values of rows still at the given timestamps, keeping the timestamps (the
   * same value newly encoded, so no replica takes it for a newer write), then compact the
   * shard so the old encodings leave the files. Returns how many rows were replaced.
   */
  reencode(shard: string, rows: ScanRow[]): Promise<number>;
  close(): Promise<void>;
}

const SEP = 0x01;

function encodeKey(shard: string, row: string): Buffer {
  return Buffer.concat([Buffer.from(shard), Buffer.of(SEP), Buffer.from(row, "utf8")]);
}

function splitKey(k: Buffer): [shard: string, row: string] {
  const at = k.indexOf(SEP);
  return [k.subarray(0, at).toString("utf8"), k.subarray(at + 1).toString("utf8")];
}

/** The digest bucket of a row (stable across peers and versions). */
export function digestBucket(row: string): number {
  return Bun.hash.crc32(row) % DIGEST_BUCKETS;
}

function rowHash(row: string, ts: string): bigint {
  return Bun.hash.xxHash64(`${row}\0${ts}`);
}

type WriteOp = { type: "put"; key: Buffer; value: IndexEntry } | { type: "del"; key: Buffer };

/**
 * Group commit: writes that arrive while a batch is being fsynced wait and go together in
 * the next batch, so N concurrent writes cost one fsync instead of N. Each write still
 * resolves only once its batch is on disk.
 */
function groupCommit(db: Level<Buffer, IndexEntry>): (op: WriteOp) => Promise<void> {
  let pending: Array<{ op: WriteOp; done: () => void; failed: (err: unknown) => void }> = [];
  let running = false;
  const run = async () => {
    running = true;
    while (pending.length) {
      const batch = pending;
      pending = [];
      try {
        await db.batch(batch.map((w) => w.op), { sync: true });
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.failed(err);
      }
    }
    running = false;
  };
  return (op) =>
    new Promise<void>((done, failed) => {
      pending.push({ op, done, failed });
      if (!running) void run();
    });
}

/** Open (or create) the index store in `dir`. */
export async function openIndexStore(dir: string, rules: MergeRules): Promise<IndexStore> {
  const db = new Level<Buffer, IndexEntry>(dir, { keyEncoding: "buffer", valueEncoding: "json" });
  try {
    await db.open();
  } catch (err) {
    // LevelDB's own message is "Database failed to open"; the cause says why (corrupt CURRENT, a lock held, ...).
    const cause = (err as Error).cause ?? err;
    throw new StartupError(`cannot open the index ${dir}: ${fileCause(cause)}`);
  }
  const digests = new Map<string, { xor: bigint[]; rows: number }>();
  const account = (shard: string, row: string, ts: string, sign: 1 | -1) => {
    let d = digests.get(shard);
    if (!d) digests.set(shard, (d = { xor: Array(DIGEST_BUCKETS).fill(0n), rows: 0 }));
    const b = digestBucket(row);
    d.xor[b] ^= rowHash(row, ts);
    d.rows += sign;
    if (d.rows === 0) digests.delete(shard);
  };
  for await (const [k, v] of db.iterator()) {
    const [shard, row] = splitKey(k);
    account(shard, row, v.ts, 1);
  }

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
  // Reads issued in the same event-loop turn go to LevelDB as one getMany: one trip to its
  // thread pool instead of one per row (a replica answers whole batches of index calls).
  const readBatch = createBatcher<Buffer, IndexEntry | null>(async (_, keys) => (await db.getMany(keys)).map((v) => v ?? null));
  const get = (k: Buffer) => readBatch("", k);
  const commit = groupCommit(db);

  async function scanShard(shard: string, opts: { gte?: Buffer; gt?: Buffer; lt: Buffer; limit?: number }): Promise<ScanRow[]> {
    const skip = Buffer.byteLength(shard) + 1;
    const rows: ScanRow[] = [];
    for await (const [k, v] of db.iterator({ ...opts, limit: opts.limit ?? -1 })) rows.push([k.subarray(skip).toString("utf8"), v]);
    return rows;
  }

  return {
    apply(shard, row, entry) {
      const k = encodeKey(shard, row);
      return withLock(k.toString("latin1"), async () => {
        const old = await get(k);
        if (!newer(entry, old, rules.deletesAreFinal(shard))) return false;
        await commit({ type: "put", key: k, value: entry });
        if (old) account(shard, row, old.ts, -1);
        account(shard, row, entry.ts, 1);
        return true;
      });
    },
    get: (shard, row) => get(encodeKey(shard, row)),
    scan(shard, { prefix, after, limit }) {
      const base = encodeKey(shard, prefix);
      const afterKey = after === undefined ? undefined : encodeKey(shard, after);
      // 0xFF never occurs in UTF-8, so prefix + 0xFF bounds every row that starts with prefix.
      const lt = Buffer.concat([base, Buffer.of(0xff)]);
      return afterKey && Buffer.compare(afterKey, base) >= 0 ? scanShard(shard, { gt: afterKey, lt, limit }) : scanShard(shard, { gte: base, lt, limit });
    },
    shards: () => [...digests.keys()],
    digests: (shard) => (digests.get(shard)?.xor ?? Array(DIGEST_BUCKETS).fill(0n)).map((x) => x.toString(16)),
    async rowsIn(shard, buckets) {
      const all = await scanShard(shard, { gte: encodeKey(shard, ""), lt: Buffer.concat([Buffer.from(shard), Buffer.of(SEP + 1)]) });
      if (!buckets) return all;
      const wanted = new Set(buckets);
      return all.filter(([row]) => wanted.has(digestBucket(row)));
    },
    async drop(shard, rows) {
      for (const [row, ts] of rows) {
        const k = encodeKey(shard, row);
        await withLock(k.toString("latin1"), async () => {
          const old = await get(k);
          // A newer write may have arrived since the caller looked: that one stays.
          if (!old || old.ts !== ts) return;
          await commit({ type: "del", key: k });
          account(shard, row, old.ts, -1);
        });
      }
    },
    async reencode(shard, rows) {
      let replaced = 0;
      for (const [row, entry] of rows) {
        const k = encodeKey(shard, row);
        await withLock(k.toString("latin1"), async () => {
          const old = await get(k);
          if (!old || old.ts !== entry.ts) return;
          await commit({ type: "put", key: k, value: entry });
          replaced++;
        });
      }
      // Flushes the write-ahead log and rewrites the shard's tables without the old versions.
      // (`level` is classic-level under Bun and Node; its declared type is the browser-neutral one.)
      const classic = db as unknown as { compactRange(start: Buffer, end: Buffer): Promise<void> };
      if (replaced) await classic.compactRange(encodeKey(shard, ""), Buffer.concat([Buffer.from(shard), Buffer.of(SEP + 1)]));
      return replaced;
    },
    close: () => db.close(),
  };
}
