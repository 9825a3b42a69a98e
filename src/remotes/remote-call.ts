// What every remote adapter shares: one deadline per call (joined with the caller's signal),
// OriginErrors that name the remote's host and never a URL or a secret, keys that a URL path
// cannot carry, bounded reads of small answers, and conversions between body shapes.
import { MeshError } from "../errors.ts";
import { OriginError } from "./backend.ts";

/** Longest wait for a remote's answer (headers, or a whole small answer) unless a spec says otherwise. */
export const DEFAULT_REMOTE_TIMEOUT_MS = 10_000;
/** Most bytes read of a remote's small answers (listings, auth, errors): a hostile remote cannot fill memory. */
export const MAX_SMALL_ANSWER_BYTES = 8 << 20;

/** A call's deadline: see `deadline`. */
export interface Deadline {
  signal: AbortSignal;
  timedOut(): boolean;
  /** The answer's head arrived: stop the clock, so a long body streams at its own pace. */
  settle(): void;
  /** Progress (a chunk of an upload went out): start the clock again, so only a stall times out. */
  touch(): void;
}

/**
 * A signal that fires at the deadline or when the caller's own signal does. The clock stops
 * at `settle()`: a fetch signal also governs the body, and a 1 GiB fill must not be cut at
 * the deadline meant for the remote's first answer. An upload calls `touch()` per chunk: its
 * answer only comes after the whole body, so its deadline is for a stall, not for the total.
 */
export function deadline(timeoutMs: number, signal?: AbortSignal): Deadline {
  const clock = new AbortController();
  let fired = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      fired = true;
      clock.abort(new DOMException("remote call timed out", "TimeoutError"));
    }, timeoutMs);
  };
  arm();
  let settled = false;
  return {
    signal: signal ? AbortSignal.any([signal, clock.signal]) : clock.signal,
    timedOut: () => fired,
    settle: () => {
      settled = true;
      clearTimeout(timer);
    },
    touch: () => {
      if (!settled && !fired) arm();
    },
  };
}

/** `body` passed through unchanged, calling `onChunk` for each chunk (an upload's progress, for `Deadline.touch`). */
export function watched(body: ReadableStream<Uint8Array>, onChunk: () => void): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, c) {
        onChunk();
        c.enqueue(chunk);
      },
    }),
  );
}

/**
 * The OriginError for a call that failed before an answer. A caller's own abort passes through
 * as it is; the message names the host and the kind of failure, never the cause's text, which
 * for SDKs can quote a URL with a signature or a key in it.
 */
export function unreachable(where: string, err: unknown, timeoutMs: number, d: Deadline, callerSignal?: AbortSignal): unknown {
  d.settle();
  if (callerSignal?.aborted) return err;
  if (err instanceof OriginError || (err instanceof MeshError && err.code === "InvalidArgument")) return err;
  if (d.timedOut()) return new OriginError(`origin ${where} did not answer within ${timeoutMs} ms`);
  const code = (err as { code?: unknown }).code;
  const kind = typeof code === "string" && /^[A-Z_]+$/.test(code) ? ` (${code})` : "";
  return new OriginError(`origin ${where} could not be reached${kind}`);
}

/** Where an SDK-backed adapter calls, and how its SDK's errors carry the remote's HTTP status. */
export interface SdkCalls {
  where: string;
  timeoutMs: number;
  statusOf(err: unknown): number | undefined;
}

/**
 * Run one SDK call under a deadline (`run` gets it: its signal for SDKs that take one). Failures
 * become OriginError (`answered` with the remote's status, else `unreachable`), except the
 * statuses `ok` lets through, which are returned as numbers (a head's 404).
 */
export async function sdkCall<T>(c: SdkCalls, signal: AbortSignal | undefined, run: (d: Deadline) => Promise<T>, ok: readonly number[] = []): Promise<T | number> {
  const d = deadline(c.timeoutMs, signal);
  try {
    return await run(d);
  } catch (err) {
    const status = c.statusOf(err);
    if (status !== undefined && ok.includes(status)) return status;
    if (status !== undefined && !signal?.aborted && !d.timedOut()) throw answered(c.where, status);
    throw unreachable(c.where, err, c.timeoutMs, d, signal);
  } finally {
    d.settle();
  }
}

/** The OriginError for an answer that was not usable. */
export function answered(where: string, status: number): OriginError {
  return new OriginError(`origin ${where} answered ${status}`);
}

/**
 * Refuse a key a URL path cannot carry: fetch (WHATWG URL) folds "." and ".." segments, even
 * percent-encoded, so "a/b/../c" would silently read "a/c". Adapters that put keys in the
 * path call this; those that send the key escaped whole (GCS, S3 through the SDK) need not.
 */
export function pathSafeKey(key: string): string {
  if (key.split("/").some((s) => s === "." || s === "..")) throw new MeshError("InvalidArgument", 'this remote addresses keys by URL path, which cannot hold a "." or ".." segment');
  return key;
}

/** A response body read to text, refusing more than `max` bytes. */
export async function smallText(res: Response, where: string, max = MAX_SMALL_ANSWER_BYTES): Promise<string> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new OriginError(`origin ${where} sent an answer over ${max} bytes`);
    }
    parts.push(value);
  }
  return new TextDecoder().decode(Buffer.concat(parts));
}

/** Discard a body nobody will read (frees the connection). */
export async function drop(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

/** The host (and port) of an endpoint, the only part of it an error may name. */
export function hostOf(endpoint: string): string {
  return new URL(endpoint).host;
}

/** A Range header value for a span. */
export function rangeHeader(span: { start: number; end: number }): string {
  return `bytes=${span.start}-${span.end}`;
}

/** Parse `bytes a-b/total` into the span and the whole size. */
export function contentRange(value: string | null | undefined): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value ?? "");
  return m ? { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) } : undefined;
}

/** Metadata names lowercased (remotes differ in case; the interface promises lower case). */
export function lowerNames(meta: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta ?? {})) out[k.toLowerCase()] = v;
  return out;
}
