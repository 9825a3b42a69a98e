// The wire format of one RPC message: a JSON header and an optional binary body.
//   [u32 header length][header JSON][u32 body length][body bytes]
// The lengths delimit messages, so one stream carries a request, its reply, the next
// request, and so on; the body carries chunk bytes without base64 or JSON copies.
import { Uint8ArrayList } from "uint8arraylist";
import type { Stream } from "@libp2p/interface";

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

/**
 * Reads whole messages off a long-lived stream, one at a time. The body is copied once,
 * straight into a buffer of its final size, so the pieces it arrived in can be freed at
 * once (a 4 MiB chunk never sits in memory twice); bytes beyond the message are kept for
 * the next one.
 */
export class MessageReader {
  private readonly buffered = new Uint8ArrayList();
  private readonly pieces: AsyncIterator<Uint8Array | Uint8ArrayList>;

  constructor(stream: Stream) {
    this.pieces = stream[Symbol.asyncIterator]();
  }

  /** Append the next piece from the stream; false at the end of the stream. */
  private async more(): Promise<boolean> {
    const piece = await this.pieces.next();
    if (piece.done) return false;
    this.buffered.append(piece.value);
    return true;
  }

  /** The next message, or null if the stream ended cleanly between messages. */
  async next<H>(): Promise<Message<H> | null> {
    while (this.buffered.byteLength < 4) {
      if (!(await this.more())) {
        if (this.buffered.byteLength === 0) return null;
        throw new Error("rpc: stream ended inside a message");
      }
    }
    const hLen = this.buffered.getUint32(0);
    if (8 + hLen > MAX_MESSAGE_BYTES) throw new Error("rpc: message too large");
    while (this.buffered.byteLength < 8 + hLen) if (!(await this.more())) throw new Error("rpc: stream ended inside a message");
    const header = JSON.parse(decoder.decode(this.buffered.subarray(4, 4 + hLen))) as H;
    const bLen = this.buffered.getUint32(4 + hLen);
    if (8 + hLen + bLen > MAX_MESSAGE_BYTES) throw new Error("rpc: message too large");
    this.buffered.consume(8 + hLen);
    if (bLen === 0) return { header };

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
      if (!(await this.more())) throw new Error("rpc: stream ended inside a message");
    }
  }
}
