// Clients that join a pull-through fill in flight (issue 15: "the others wait for it and stream
// from it"). The fill stores the origin's body as content-addressed chunks at RF=3 as it goes;
// the filler keeps, per fill, which chunks every owner holds so far (`FillProgress`) and answers
// `origin.progress` with them. A joiner, on any peer (the filler too), is answered at once with
// the origin's size and headers, and a body that reads those chunks in order as they appear,
// polling the progress with a short bounded backoff and reading each batch like a normal read
// (objects.readObject: two chunks ahead at most). Once the fill is done (or its progress is
// gone) the final manifest gives the rest; a fill that failed, or a manifest that is not this
// fill's, cuts the joiner's body (as any failed stream does). A body's last bytes come only
// once the fill is done, as the first client's do (pull-through.ts `split`): a GET after it is a HIT.
import { Type, type Static } from "@sinclair/typebox";
import type { ChunkRef, ObjectManifest } from "../metadata/types.ts";
import { defineMethod } from "../net/rpc.ts";
import type { ObjectService } from "../objects/object-service.ts";
import { OriginError } from "./backend.ts";

/** Chunks one progress answer lists at most (the joiner asks again for the rest). */
export const PROGRESS_PAGE = 64;
/** Poll backoff bounds while no new chunk is stored. */
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 200;
/** A fill whose progress shows nothing new for this long is given up by its joiners. */
const JOIN_STALL_MS = 60_000;

/** What a fill in flight has stored so far, kept on the filler while it runs. */
export interface FillProgress {
  /** The origin's headers and size; set once the origin answered with a body to keep. */
  shown?: ObjectManifest;
  /** The fill's origin stamp time: the final manifest's `origin.fetchedMs` names this fill. */
  fetchedMs?: number;
  /** By slot: chunks whose owners have all answered (slots may settle out of order). */
  chunks: Array<{ ref: ChunkRef; holders: string[] } | undefined>;
  /** How many leading slots are settled. */
  stored: number;
  /** The origin has sent the whole body (what is left: storing the last chunks, writing the manifest). */
  received: boolean;
  done: boolean;
  failed?: string;
  /** Resolves when `shown` is set. */
  started: Promise<void>;
  start(shown: ObjectManifest, fetchedMs: number): void;
  /** Record a settled chunk (the object service's onChunkStored). */
  chunkStored(slot: number, ref: ChunkRef, holders: string[]): void;
}

/** What the joiner reads a stream with (Node's and the DOM's readers both fit). */
interface Reader {
  read(): Promise<{ done: true; value?: Uint8Array } | { done: false; value: Uint8Array }>;
  cancel(reason?: unknown): Promise<void>;
}

/** A new, empty progress record. */
export function fillProgress(): FillProgress {
  let began!: () => void;
  const started = new Promise<void>((resolve) => (began = resolve));
  const p: FillProgress = {
    chunks: [],
    stored: 0,
    received: false,
    done: false,
    started,
    start(shown, fetchedMs) {
      p.shown = shown;
      p.fetchedMs = fetchedMs;
      began();
    },
    chunkStored(slot, ref, holders) {
      p.chunks[slot] = { ref, holders };
      while (p.chunks[p.stored]) p.stored++;
    },
  };
  return p;
}

const ProgressAnswer = Type.Object({
  found: Type.Boolean(),
  done: Type.Boolean(),
  failed: Type.Optional(Type.String()),
  fetchedMs: Type.Optional(Type.Number()),
  /** Settled chunks from `from`, at most PROGRESS_PAGE. */
  chunks: Type.Array(Type.Object({ id: Type.String(), size: Type.Number(), holders: Type.Array(Type.String()) })),
});
/** One answer of `origin.progress`. */
export type ProgressAnswer = Static<typeof ProgressAnswer>;

/** The progress of bucket/key's fill in flight on the filler: settled chunks from index `from`. */
export const PROGRESS_METHOD = defineMethod("origin.progress", {
  params: Type.Object(
    { bucket: Type.String({ minLength: 3, maxLength: 63 }), key: Type.String({ minLength: 1, maxLength: 4096 }), from: Type.Integer({ minimum: 0 }) },
    { additionalProperties: false },
  ),
  result: ProgressAnswer,
});

/** Answer a progress poll from a record (undefined: no fill in flight). */
export function progressAnswer(p: FillProgress | undefined, from: number): ProgressAnswer {
  if (!p) return { found: false, done: false, chunks: [] };
  const chunks: ProgressAnswer["chunks"] = [];
  for (let i = from; i < Math.min(p.stored, from + PROGRESS_PAGE); i++) {
    const c = p.chunks[i]!;
    chunks.push({ id: c.ref.id, size: c.ref.size, holders: c.holders });
  }
  return { found: true, done: p.done, ...(p.failed !== undefined && { failed: p.failed }), ...(p.fetchedMs !== undefined && { fetchedMs: p.fetchedMs }), chunks };
}

/**
 * The body of a joiner: `size` bytes of the fill named by `fetchedMs`, read from its stored
 * chunks as `poll` reports them, then from the final manifest.
 */
export function joinBody(
  objects: Pick<ObjectService, "headObject" | "readObject">,
  bucket: string,
  key: string,
  size: number,
  fetchedMs: number,
  poll: (from: number, signal: AbortSignal) => Promise<ProgressAnswer>,
): ReadableStream<Uint8Array> {
  const stop = new AbortController();
  let current: Reader | undefined;
  let sent = 0;
  let from = 0;
  let final = false;
  let waitMs = POLL_MIN_MS;
  let lastNews = Date.now();

  /** The final manifest, if it is this fill's. */
  async function keptManifest(): Promise<ObjectManifest> {
    const m = await objects.headObject(bucket, key, { signal: stop.signal }).catch(() => null);
    if (!m || m.remote || m.size !== size || m.origin?.fetchedMs !== fetchedMs) throw new OriginError("the fill this read joined did not keep the object");
    return m;
  }

  /** The rest from the final manifest, if it is this fill's. */
  async function fromManifest(): Promise<Reader> {
    const m = await keptManifest();
    final = true;
    return (await objects.readObject(m, sent, size, { signal: stop.signal })).getReader();
  }

  /** Wait until the fill has kept the object (its manifest written); throws if it did not. */
  async function kept(): Promise<void> {
    for (;;) {
      let p: ProgressAnswer;
      try {
        p = await poll(from, stop.signal);
      } catch (err) {
        // The filler went away with every byte stored and read: they are the origin's (each chunk is
        // checked against its id), so the body ends; only the wait for the manifest is given up.
        if (stop.signal.aborted) throw err;
        return;
      }
      if (p.found && p.fetchedMs === fetchedMs && p.failed !== undefined) throw new OriginError(`the fill this read joined failed: ${p.failed}`);
      if (!p.found || p.fetchedMs !== fetchedMs || p.done) {
        await keptManifest();
        return;
      }
      if (Date.now() - lastNews > JOIN_STALL_MS) throw new OriginError(`the fill this read joined stored nothing for ${JOIN_STALL_MS} ms`);
      await Bun.sleep(waitMs);
      waitMs = Math.min(POLL_MAX_MS, waitMs * 2);
    }
  }

  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        for (;;) {
          // Cancelled while this pull waited: stop polling (nothing reads what would come).
          if (stop.signal.aborted) return;
          if (current) {
            const r = await current.read();
            if (!r.done) {
              sent += r.value.byteLength;
              if (sent > size) throw new OriginError("the fill stored more bytes than the origin announced");
              // The last bytes wait until the fill has kept the object: a client that has them all then finds it kept (a HIT).
              if (sent === size && !final) await kept();
              c.enqueue(r.value);
              return;
            }
            current = undefined;
          }
          if (sent >= size) return c.close();
          if (final) throw new OriginError("the kept object ended early");
          const p = await poll(from, stop.signal);
          // Progress of another fill of the key (this one ended, a newer one began): the manifest says how this one ended.
          if (!p.found || p.fetchedMs !== fetchedMs) {
            current = await fromManifest();
            continue;
          }
          if (p.failed !== undefined) throw new OriginError(`the fill this read joined failed: ${p.failed}`);
          if (p.chunks.length) {
            // A batch of settled chunks read like any object (read-ahead bounded by readObject).
            const part: ObjectManifest = {
              size: p.chunks.reduce((n, ch) => n + ch.size, 0),
              etag: "",
              contentType: "application/octet-stream",
              meta: {},
              lastModified: 0,
              chunkSize: 0,
              chunks: p.chunks.map((ch) => ({ id: ch.id, size: ch.size })),
              holders: p.chunks.map((ch) => ch.holders),
            };
            from += p.chunks.length;
            current = (await objects.readObject(part, 0, part.size, { signal: stop.signal, part: true })).getReader();
            waitMs = POLL_MIN_MS;
            lastNews = Date.now();
            continue;
          }
          if (p.done) {
            current = await fromManifest();
            continue;
          }
          if (Date.now() - lastNews > JOIN_STALL_MS) throw new OriginError(`the fill this read joined stored nothing for ${JOIN_STALL_MS} ms`);
          await Bun.sleep(waitMs);
          waitMs = Math.min(POLL_MAX_MS, waitMs * 2);
        }
      },
      cancel(reason) {
        stop.abort(reason);
        return current?.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}
