// The wire format of one RPC message: a JSON header and an optional binary body.
//   [u32 header length][header JSON][u32 body length][body bytes]
// The lengths delimit messages, so one stream carries a request, its reply, the next
// request, and so on; the body carries chunk bytes without base64 or JSON copies.
import { Uint8ArrayList } from "uint8arraylist";
import type { Stream } from "@libp2p/interface";
import { MeshError } from "../errors.ts";

/** Largest message accepted from a peer (a chunk plus its header, with room). */
export const MAX_MESSAGE_BYTES = 80 * 1024 * 1024;

/** A decoded message. */
export interface Message<H = unknown> {
  header: H;
  body?: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encode a message as the list of buffers to send (the body is not copied). */
export function encodeMessage(header: unknown, body?: Uint8Array): Uint8Array[] {
  const h = encoder.encode(JSON.stringify(header));
  const prefix = new Uint8Array(8 + h.byteLength);
  const view = new DataView(prefix.buffer);
  view.setUint32(0, h.byteLength);
  prefix.set(h, 4);
  view.setUint32(4 + h.byteLength, body?.byteLength ?? 0);
  return body && body.byteLength ? [prefix, body] : [prefix];
}

/** Messages up to this size go out as one buffer: each send costs a yamux frame, a noise seal and a socket write. */
const COALESCE_BYTES = 64 * 1024;

/** Send buffers, waiting for `drain` whenever the stream asks us to. */
export async function sendAll(stream: Stream, parts: Uint8Array[], signal?: AbortSignal): Promise<void> {
  if (parts.length > 1 && parts.reduce((n, p) => n + p.byteLength, 0) <= COALESCE_BYTES) parts = [Buffer.concat(parts)];
  for (const part of parts) {
    if (!stream.send(part)) await stream.onDrain({ signal });
  }
}

/** A message refused for its declared size, before any of it is buffered. */
export class MessageTooLargeError extends MeshError {
  constructor(message: string) {
    super("EntityTooLarge", message);
  }
}
/** A stream that stopped sending inside a message, or sat idle too long between messages. */
export class StreamStalledError extends MeshError {
  constructor(message: string) {
    super("RequestTimeout", message);
  }
}

/**
 * A per-process allowance of bytes for inbound message bodies, shared by every stream:
 * a reader takes a message's declared size before it buffers the message, and waits
 * (its stream paused, so the sender is held back by flow control) while the allowance
 * is spent. Waiters are served in order, so a large message is not starved by small ones.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiters: Array<{ bytes: number; grant: () => void }> = [];

  constructor(readonly limit: number) {}

  /** Bytes currently taken. */
  get inUse(): number {
    return this.used;
  }

  /** Take `bytes`, waiting at most `timeoutMs` for them; throws StreamStalledError on timeout. */
  async take(bytes: number, timeoutMs: number): Promise<void> {
    if (bytes > this.limit) throw new MessageTooLargeError(`rpc: a message of ${bytes} bytes exceeds the inbound budget of ${this.limit}`);
    if (this.waiters.length === 0 && this.used + bytes <= this.limit) {
      this.used += bytes;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = {
        bytes,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        this.grantWaiting();
        reject(new StreamStalledError(`rpc: no room for a ${bytes}-byte message within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Give back `bytes` taken earlier. */
  give(bytes: number): void {
    this.used -= bytes;
    this.grantWaiting();
  }

  private grantWaiting(): void {
    while (this.waiters.length && this.used + this.waiters[0].bytes <= this.limit) {
      const w = this.waiters.shift()!;
      this.used += w.bytes;
      w.grant();
    }
  }
}

/** What a reader accepts; a reader without limits (tests, trusted replies) has only the size cap. */
export interface ReaderLimits {
  /** The largest body a message with this header may declare (default MAX_MESSAGE_BYTES). */
  maxBody?(header: unknown): number;
  /** The shared allowance inbound messages are taken from. */
  budget?: ByteBudget;
  /** A message that makes no progress for this long is given up (and the stream dropped). */
  stallMs?: number;
  /** Waiting this long for the next message ends the stream. */
  idleMs?: number;
  /** Pause the stream between messages (the server side: a caller sends nothing while its call runs). */
  pauseBetween?: boolean;
}

/** How long a reader without a stall timeout waits for budget. */
const DEFAULT_BUDGET_WAIT_MS = 30_000;
/** Headers up to this size are not charged to the budget (a stalled one costs little and times out). */
const SMALL_HEADER_BYTES = 64 * 1024;

/**
 * Reads whole messages off a long-lived stream, one at a time. The body is copied once,
 * straight into a buffer of its final size, so the pieces it arrived in can be freed at
 * once (a 4 MiB chunk never sits in memory twice); bytes beyond the message are kept for
 * the next one. A declared size beyond the limits is refused before anything is buffered,
 * and a message is charged to the budget until the next call of `next()` (or `close()`).
 */
export class MessageReader {
  private readonly buffered = new Uint8ArrayList();
  private readonly pieces: AsyncIterator<Uint8Array | Uint8ArrayList>;
  /** Bytes of the budget held for the last message returned. */
  private held = 0;

  constructor(
    private readonly stream: Stream,
    private readonly limits: ReaderLimits = {},
  ) {
    this.pieces = stream[Symbol.asyncIterator]();
  }

  /** Append the next piece from the stream; false at the end of the stream. */
  private async more(timeoutMs: number | undefined, what: string): Promise<boolean> {
    const next = this.pieces.next();
    let piece: IteratorResult<Uint8Array | Uint8ArrayList>;
    if (!timeoutMs) piece = await next;
    else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StreamStalledError(`rpc: nothing received for ${timeoutMs} ms ${what}`)), timeoutMs);
      });
      next.catch(() => {}); // the stream is dropped after a stall; its iterator's end is of no interest
      try {
        piece = await Promise.race([next, stalled]);
      } finally {
        clearTimeout(timer);
      }
    }
    if (piece.done) return false;
    this.buffered.append(piece.value);
    return true;
  }

  /** Wait for budget with the stream paused: the sender's flow-control window closes meanwhile. */
  private async charge(bytes: number): Promise<void> {
    const { budget } = this.limits;
    if (!budget || bytes === 0) return;
    const pausable = this.limits.pauseBetween && this.stream.status === "open";
    if (pausable) this.stream.pause();
    try {
      await budget.take(bytes, this.limits.stallMs ?? DEFAULT_BUDGET_WAIT_MS);
      this.held += bytes;
    } finally {
      if (pausable && this.stream.status === "open") this.stream.resume();
    }
  }

  /** Give back the budget held for the last message. */
  close(): void {
    if (this.held) this.limits.budget?.give(this.held);
    this.held = 0;
  }

  /** The next message, or null if the stream ended cleanly between messages. */
  async next<H>(): Promise<Message<H> | null> {
    this.close();
    const { stallMs, idleMs } = this.limits;
    const pausable = this.limits.pauseBetween && this.stream.status === "open";
    if (pausable) this.stream.resume();
    const message = await this.read<H>(stallMs, idleMs);
    if (pausable && message && this.stream.status === "open") this.stream.pause();
    return message;
  }

  private async read<H>(stallMs: number | undefined, idleMs: number | undefined): Promise<Message<H> | null> {
    while (this.buffered.byteLength < 4) {
      const idle = this.buffered.byteLength === 0;
      if (!(await this.more(idle ? idleMs : stallMs, idle ? "between messages" : "inside a message"))) {
        if (this.buffered.byteLength === 0) return null;
        throw new Error("rpc: stream ended inside a message");
      }
    }
    const hLen = this.buffered.getUint32(0);
    if (8 + hLen > MAX_MESSAGE_BYTES) throw new MessageTooLargeError("rpc: message too large");
    const headerCharge = this.limits.budget && hLen > SMALL_HEADER_BYTES ? hLen : 0;
    await this.charge(headerCharge);
    while (this.buffered.byteLength < 8 + hLen) if (!(await this.more(stallMs, "inside a message"))) throw new Error("rpc: stream ended inside a message");
    const header = JSON.parse(decoder.decode(this.buffered.subarray(4, 4 + hLen))) as H;
    const bLen = this.buffered.getUint32(4 + hLen);
    const maxBody = this.limits.maxBody ? this.limits.maxBody(header) : MAX_MESSAGE_BYTES - 8 - hLen;
    if (bLen > maxBody || 8 + hLen + bLen > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(`rpc: a body of ${bLen} bytes exceeds the limit of ${maxBody}`);
    this.buffered.consume(8 + hLen);
    if (headerCharge) {
      this.limits.budget!.give(headerCharge);
      this.held -= headerCharge;
    }
    if (bLen === 0) return { header };

    await this.charge(bLen);
    const body = new Uint8Array(bLen);
    let filled = 0;
    for (;;) {
      const take = Math.min(bLen - filled, this.buffered.byteLength);
      // Piece by piece: the list's own subarray would first join the pieces into a copy.
      let left = take;
      for (const piece of this.buffered) {
        if (left === 0) break;
        const n = Math.min(piece.byteLength, left);
        body.set(n === piece.byteLength ? piece : piece.subarray(0, n), filled);
        filled += n;
        left -= n;
      }
      this.buffered.consume(take);
      if (filled === bLen) return { header, body };
      if (!(await this.more(stallMs, "inside a message"))) throw new Error("rpc: stream ended inside a message");
    }
  }
}
