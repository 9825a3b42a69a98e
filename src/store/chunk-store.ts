/**
 * Local content-addressed chunk store.
 *
 * Chunks are immutable and named by the lowercase hex SHA-256 of their bytes.
 * Layout: <dir>/<first 2 hex>/<id>, plus <dir>/tmp (in-progress writes) and
 * <dir>/quarantine (chunks that failed verification on read).
 */
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { BadDigestError, MeshError } from "../errors.ts";

/** Options for openChunkStore. */
export interface ChunkStoreOptions {
  /** Root folder of the store, e.g. <data>/chunks. */
  dir: string;
}

/** Thrown when a stored chunk's bytes do not hash to its id (it has already been quarantined when thrown). */
export class ChunkCorruptError extends MeshError {
  /** Id of the corrupt chunk. */
  readonly chunkId: string;
  /** Where the corrupt file was moved to (null if another reader moved it first). */
  readonly quarantinedAt: string | null;
  constructor(chunkId: string, quarantinedAt: string | null) {
    super("ChunkCorrupt", `chunk ${chunkId} is corrupt (content does not match its id); quarantined`);
    this.chunkId = chunkId;
    this.quarantinedAt = quarantinedAt;
  }
}

/** Thrown when a string that is not a 64-char lowercase hex id is passed as a chunk id. */
export class InvalidChunkIdError extends MeshError {
  constructor(id: unknown) {
    super("InvalidChunkId", `invalid chunk id: ${JSON.stringify(String(id)).slice(0, 100)}`);
  }
}

/** A peer's local store of immutable, content-addressed chunks. */
export interface ChunkStore {
  /** Root folder of the store. */
  readonly dir: string;
  /** Verify sha256(bytes) === id (BadDigestError, code "BadDigest", if not), then store durably; true if newly written, false if already present. */
  put(id: string, bytes: Uint8Array): Promise<boolean>;
  /** Read and verify; null if absent; on mismatch the file is quarantined and ChunkCorruptError thrown. */
  get(id: string): Promise<Uint8Array | null>;
  /** Whether the chunk is stored (not verified). */
  has(id: string): Promise<boolean>;
  /** Size in bytes or null if absent. */
  size(id: string): Promise<number | null>;
  /** Remove a chunk; true if it was present. */
  delete(id: string): Promise<boolean>;
  /** Every stored chunk id (not temp or quarantined files). */
  list(): AsyncIterable<string>;
  /** Count and total bytes of stored chunks (scans the store). */
  stats(): Promise<{ chunks: number; bytes: number }>;
  /**
   * Count and total bytes of stored chunks now: a scan at open, kept current by every put,
   * delete and quarantine here, and reset by each stats() scan that no change overlapped
   * (files removed behind the store's back are seen there).
   */
  counts(): { chunks: number; bytes: number };
}

const CHUNK_ID = /^[0-9a-f]{64}$/;
const PREFIX = /^[0-9a-f]{2}$/;

/** Lowercase hex SHA-256 of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** True if s is a valid chunk id (64 lowercase hex chars). */
export function isChunkId(s: string): boolean {
  return typeof s === "string" && CHUNK_ID.test(s);
}

function assertChunkId(id: string): void {
  if (!isChunkId(id)) throw new InvalidChunkIdError(id);
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

/** fsync a directory so renames/creations inside it survive a crash. */
async function fsyncDir(path: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Open (creating if needed) a chunk store rooted at opts.dir and discard leftovers of interrupted writes. */
export async function openChunkStore(opts: ChunkStoreOptions): Promise<ChunkStore> {
  const dir = opts.dir;
  const tmpDir = join(dir, "tmp");
  const quarantineDir = join(dir, "quarantine");

  // Owner-only whatever the process umask (an embedding application keeps its own).
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Anything in tmp was never renamed into place, so it is an incomplete write: drop it.
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  await mkdir(quarantineDir, { recursive: true, mode: 0o700 });
  // Pre-create all 256 fan-out folders so put() never has to make (and fsync) a new folder.
  for (let i = 0; i < 256; i++) {
    await mkdir(join(dir, i.toString(16).padStart(2, "0")), { recursive: true, mode: 0o700 });
  }
  await fsyncDir(dir);

  // Callers must validate ids before calling this (never build a path from an unvalidated string).
  const chunkPath = (id: string) => join(dir, id.slice(0, 2), id);

  // Live counts (counts()): what the store holds now, without a scan per question.
  const live = { chunks: 0, bytes: 0 };
  /** Changes counted so far, and deletes or quarantines under way: a scan that saw neither is exact. */
  let changes = 0;
  let removing = 0;
  const counted = (chunks: number, bytes: number) => {
    changes++;
    live.chunks = Math.max(0, live.chunks + chunks);
    live.bytes = Math.max(0, live.bytes + bytes);
  };

  // In-flight puts by id, so concurrent puts of one chunk in this process write it once.
  const pending = new Map<string, Promise<boolean>>();

  async function writeChunk(id: string, bytes: Uint8Array): Promise<boolean> {
    const final = chunkPath(id);
    if (await exists(final)) return false;
    const tmp = join(tmpDir, `${id}.${crypto.randomUUID()}`);
    const fh = await open(tmp, "wx", 0o600);
    try {
      try {
        let off = 0;
        while (off < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, off, bytes.length - off, off);
          off += bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Atomic: readers see either no chunk or the complete, fsynced one. If another
      // process raced us, rename just replaces the file with identical bytes.
      await rename(tmp, final);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(join(dir, id.slice(0, 2)));
    counted(1, bytes.length);
    return true;
  }

  async function exists(path: string): Promise<boolean> {
    try {
      await stat(path);
      return true;
    } catch (err) {
      if (isErrno(err, "ENOENT")) return false;
      throw err;
    }
  }

  async function quarantine(id: string, size: number): Promise<string | null> {
    const dest = join(quarantineDir, `${id}.${Date.now()}.${crypto.randomUUID().slice(0, 8)}`);
    removing++;
    try {
      await rename(chunkPath(id), dest);
      counted(-1, -size);
      return dest;
    } catch (err) {
      // A concurrent reader (or delete) already moved it away.
      if (isErrno(err, "ENOENT")) return null;
      throw err;
    } finally {
      removing--;
    }
  }

  async function* list(): AsyncGenerator<string> {
    for (const prefix of (await readdir(dir)).sort()) {
      if (!PREFIX.test(prefix)) continue; // skips tmp/ and quarantine/
      let names: string[];
      try {
        names = await readdir(join(dir, prefix));
      } catch (err) {
        if (isErrno(err, "ENOENT") || isErrno(err, "ENOTDIR")) continue;
        throw err;
      }
      for (const name of names.sort()) {
        if (isChunkId(name) && name.startsWith(prefix)) yield name;
      }
    }
  }

  async function stats(): Promise<{ chunks: number; bytes: number }> {
    const changesBefore = changes;
    let chunks = 0;
    let bytes = 0;
    for await (const id of list()) {
      try {
        bytes += (await stat(chunkPath(id))).size;
        chunks++;
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw err; // deleted while scanning
      }
    }
    if (changes === changesBefore && pending.size === 0 && removing === 0) Object.assign(live, { chunks, bytes });
    return { chunks, bytes };
  }
  await stats();

  return {
    dir,

    async put(id, bytes) {
      assertChunkId(id);
      const actual = sha256Hex(bytes);
      if (actual !== id) throw new BadDigestError(`bad digest: expected ${id}, got ${actual}`, { expected: id, actual });
      const inFlight = pending.get(id);
      if (inFlight) {
        await inFlight;
        return false;
      }
      const p = writeChunk(id, bytes).finally(() => pending.delete(id));
      pending.set(id, p);
      return p;
    },

    async get(id) {
      assertChunkId(id);
      let buf: Buffer;
      try {
        buf = await readFile(chunkPath(id));
      } catch (err) {
        if (isErrno(err, "ENOENT")) return null;
        throw err;
      }
      if (sha256Hex(buf) !== id) throw new ChunkCorruptError(id, await quarantine(id, buf.byteLength));
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    },

    async has(id) {
      assertChunkId(id);
      return exists(chunkPath(id));
    },

    async size(id) {
      assertChunkId(id);
      try {
        return (await stat(chunkPath(id))).size;
      } catch (err) {
        if (isErrno(err, "ENOENT")) return null;
        throw err;
      }
    },

    async delete(id) {
      assertChunkId(id);
      removing++;
      try {
        const { size } = await stat(chunkPath(id));
        await unlink(chunkPath(id));
        counted(-1, -size);
        return true;
      } catch (err) {
        if (isErrno(err, "ENOENT")) return false;
        throw err;
      } finally {
        removing--;
      }
    },

    list,

    stats,

    counts: () => ({ ...live }),
  };
}
