// Which chunk ids the manifests in this peer's object shards reference, for GC.
//
// Every row of an object shard that lists chunks counts: current manifests, multipart
// parts, and in versioned buckets every version row ("\x01v...", src/objects/versions.ts),
// so a noncurrent version keeps its chunks until that version is deleted (a delete marker
// lists none). Nothing here tells row kinds apart on purpose: a new kind of row that lists
// chunks is a reference without anyone remembering to add it.
//
// GC asks about a peer's chunks in batches of at most 5,000 ids, and every batch needs
// the references of every manifest held here. Reading all manifests per batch makes a
// GC pass quadratic, so the references are kept per shard and a shard is read again only
// when its rows changed. A shard's anti-entropy digests (index-store.ts) change with
// every write or drop of one of its rows, so "digests unchanged" means "rows unchanged":
// every answer is the one a full read at that moment would give. The digests are read
// before the rows: a write that lands meanwhile changes them again, and the next lookup
// reads that shard once more.
import type { ObjectManifest } from "../metadata/types.ts";
import type { IndexStore } from "../store/index-store.ts";

/** A shard's references and the digests they were read under. */
interface ShardRefs {
  digest: string;
  ids: string[];
}

/** Chunk ids referenced by the manifests held here, kept in step with the index store. */
export interface ReferenceIndex {
  /** Bring the references up to date with the store, then answer whether a chunk id is referenced. */
  lookup(): Promise<(id: string) => boolean>;
  /** Shard reads since creation (tests and the bench check that an unchanged shard is not read again). */
  readonly shardReads: number;
}

/** Rows of object shards (manifests, multipart parts); other shards list no chunks. */
const isObjectShard = (shard: string) => shard.startsWith("o");

/** Create the reference index over `store`. */
export function createReferenceIndex(store: Pick<IndexStore, "shards" | "digests" | "rowsIn">): ReferenceIndex {
  const byShard = new Map<string, ShardRefs>();
  // How many held shards reference each id: one lookup per id, however many shards there are.
  const counts = new Map<string, number>();
  let shardReads = 0;
  // One refresh at a time, so two lookups never count one shard twice.
  let queue: Promise<void> = Promise.resolve();

  function forget(shard: string): void {
    const old = byShard.get(shard);
    if (!old) return;
    byShard.delete(shard);
    for (const id of old.ids) {
      const n = counts.get(id)! - 1;
      if (n) counts.set(id, n);
      else counts.delete(id);
    }
  }

  async function read(shard: string, digest: string): Promise<void> {
    shardReads++;
    const ids: string[] = [];
    for (const [, entry] of await store.rowsIn(shard)) {
      // Manifests, versions and multipart parts list chunks; upload records, delete markers and events list none.
      const m = entry.value as Partial<ObjectManifest> | null;
      if (m?.chunks) for (const c of m.chunks) ids.push(c.id);
    }
    forget(shard);
    byShard.set(shard, { digest, ids });
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  }

  async function refresh(): Promise<void> {
    const held = new Set(store.shards().filter(isObjectShard));
    for (const shard of [...byShard.keys()]) if (!held.has(shard)) forget(shard);
    for (const shard of held) {
      const digest = store.digests(shard).join(",");
      if (byShard.get(shard)?.digest !== digest) await read(shard, digest);
    }
  }

  return {
    get shardReads() {
      return shardReads;
    },
    async lookup() {
      const done = queue.then(refresh);
      queue = done.catch(() => {});
      await done;
      return (id) => counts.has(id);
    },
  };
}
