// Where upload records live: the uploads shard of the replicated index (quorum writes and
// reads, listings merged over a quorum of its replicas), or, for unit tests, one local
// index store with the same merge rules.
import { UPLOADS_SHARD } from "../metadata/keys.ts";
import type { IndexClient } from "../metadata/index-client.ts";
import { listMerged, type ListingDeps } from "../metadata/listing.ts";
import type { IndexStore } from "../store/index-store.ts";
import { encodeTimestamp, type Hlc } from "../util/hlc.ts";
import type { RecordRows } from "./service.ts";

/** Records in the replicated index. */
export function indexRows(listing: ListingDeps & { index: IndexClient }, hlc: Hlc): RecordRows {
  const { index } = listing;
  return {
    // Issued in one turn, writes to one shard's replicas share each replica's batch (index-client.ts).
    write: async (rows) => void (await Promise.all(rows.map(([row, value]) => index.write(UPLOADS_SHARD, row, { ts: encodeTimestamp(hlc.now()), value })))),
    read: async (row) => (await index.read(UPLOADS_SHARD, row))?.value ?? null,
    async list(prefix, limit, after) {
      const page = await listMerged<unknown>(listing, { shards: [UPLOADS_SHARD], rowPrefix: prefix, prefix: "", limit, after: after?.slice(prefix.length) });
      return page.rows.map((r) => [prefix + r.key, r.value]);
    },
    async local(prefix, limit, after) {
      const found = await index.scanOn(listing.self, { shards: [UPLOADS_SHARD], prefix, after, limit });
      return (found[UPLOADS_SHARD] ?? []).map(([row, e]) => [row, e.value]);
    },
  };
}

/** Records in one local store (unit tests): the same rows and merge rules, no replicas. */
export function storeRows(store: IndexStore, hlc: Hlc): RecordRows {
  const scan = async (prefix: string, limit: number, after?: string) => (await store.scan(UPLOADS_SHARD, { prefix, after, limit })).map(([row, e]): [string, unknown] => [row, e.value]);
  return {
    write: async (rows) => void (await Promise.all(rows.map(([row, value]) => store.apply(UPLOADS_SHARD, row, { ts: encodeTimestamp(hlc.now()), value })))),
    read: async (row) => (await store.get(UPLOADS_SHARD, row))?.value ?? null,
    async list(prefix, limit, after) {
      // Deleted rows are skipped, so read on until `limit` live ones (or the end).
      const out: Array<[string, unknown]> = [];
      let from = after;
      for (;;) {
        const page = await scan(prefix, limit, from);
        for (const r of page) if (r[1] !== null && out.length < limit) out.push(r);
        if (page.length < limit || out.length >= limit) return out;
        from = page[page.length - 1][0];
      }
    },
    local: scan,
  };
}
