// A Range GET on an object whose bytes are not kept yet (issue 15): only the chunks the range
// needs are read from the origin, aligned to the chunk size, with If-Match on the origin's
// ETag so that the bytes served all come from one version of the object. The pieces are
// streamed to the client and not kept (the full fill is left to a later GET without Range):
// the read holds no more than the stream's own pieces in memory, whatever the span.
//
// The span is aligned to chunk boundaries so that the origin sees the same few requests for
// every range inside one chunk (a CDN in front of it can cache them) and so that the pieces
// line up with the chunks a later fill will cut; a small range costs at most two chunks.
import { OriginError, type ByteSpan, type RemoteBackend, type RemoteObjectInfo } from "./backend.ts";

/** What a ranged read found: the origin's answer for `want`, or why a full read must be done instead. */
export type RangedRead =
  /** `body` holds exactly the bytes asked for; `info` is what the origin said of the whole object. */
  | { kind: "body"; info: RemoteObjectInfo; body: ReadableStream<Uint8Array> }
  /** The origin has no such object. */
  | { kind: "absent" }
  /** The ETag did not match (the object changed since its ETag was learnt), or the origin ignored Range or If-Match. */
  | { kind: "fallback"; why: string };

/** An ETag without its weak mark and quotes: adapters and listings differ in how they write the same one. */
function bareEtag(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

/** The chunk-aligned span (both ends included) that covers bytes [start, end) of an object of `size` bytes. */
export function alignedSpan(start: number, end: number, size: number, chunkSize: number): ByteSpan {
  if (!(chunkSize > 0) || start < 0 || end <= start || end > size) throw new RangeError(`bad span ${start}-${end} of ${size} (chunk ${chunkSize})`);
  const first = Math.floor(start / chunkSize) * chunkSize;
  const last = Math.min(size, Math.ceil(end / chunkSize) * chunkSize) - 1;
  return { start: first, end: last };
}

/**
 * `length` bytes of `source` after its first `skip`: pieces are cut, never gathered, and the
 * source is cancelled once the bytes are out (the rest of the aligned span is not read). A
 * source that sends nothing for `stallMs` fails the stream; one that ends early fails it too.
 */
export function sliceStream(source: ReadableStream<Uint8Array>, skip: number, length: number, stallMs: number): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  let toSkip = skip;
  let left = length;
  return new ReadableStream<Uint8Array>(
    {
      async pull(c) {
        while (left > 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          let piece: Awaited<ReturnType<typeof reader.read>>;
          try {
            const stalled = new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new OriginError(`the origin sent nothing for ${stallMs} ms`)), stallMs);
            });
            piece = await Promise.race([reader.read(), stalled]);
          } catch (err) {
            reader.cancel(err).catch(() => {});
            throw err;
          } finally {
            clearTimeout(timer);
          }
          if (piece.done) {
            const err = new OriginError(`the origin's ranged answer ended ${left} bytes short`);
            c.error(err);
            return;
          }
          let bytes = piece.value;
          if (toSkip > 0) {
            const dropped = Math.min(toSkip, bytes.byteLength);
            toSkip -= dropped;
            bytes = bytes.subarray(dropped);
          }
          if (bytes.byteLength === 0) continue;
          if (bytes.byteLength > left) bytes = bytes.subarray(0, left);
          left -= bytes.byteLength;
          c.enqueue(bytes);
          // One piece per pull: the client's pace drives the origin's reads.
          if (left > 0) return;
        }
        c.close();
        // The rest of the aligned span is not wanted: stop reading it.
        reader.cancel().catch(() => {});
      },
      cancel(reason) {
        return reader.cancel(reason).catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Read bytes [start, end) of `key` (of `size` bytes, ETag `etag`) through the chunk-aligned
 * span that covers them, with If-Match on `etag`. `signal` is the client's: nothing is kept,
 * so a client that goes away ends the origin read too.
 */
export async function readRange(
  backend: Pick<RemoteBackend, "get">,
  key: string,
  want: { start: number; end: number; size: number; etag: string },
  chunkSize: number,
  stallMs: number,
  signal?: AbortSignal,
): Promise<RangedRead> {
  const span = alignedSpan(want.start, want.end, want.size, chunkSize);
  const got = await backend.get(key, { range: span, ifMatch: want.etag, signal });
  if (got === null) return { kind: "absent" };
  if (got === "changed") return { kind: "fallback", why: "the origin's object changed (If-Match failed)" };
  if (got === "not-modified") return { kind: "fallback", why: "the origin answered 304 to a ranged read" };
  const drop = (why: string): RangedRead => {
    got.body.cancel().catch(() => {});
    return { kind: "fallback", why };
  };
  // An origin that ignores Range answers with the whole object; one that ignores If-Match may send another version.
  if (!got.range) return drop("the origin ignored Range");
  if (got.range.start > want.start || got.range.end < want.end - 1) return drop("the origin answered another span");
  if (got.info.etag !== undefined && bareEtag(got.info.etag) !== bareEtag(want.etag)) return drop("the origin's ETag changed");
  if (got.info.size !== want.size) return drop("the origin's size changed");
  return { kind: "body", info: got.info, body: sliceStream(got.body, want.start - got.range.start, want.end - want.start, stallMs) };
}
