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

/** Decode a whole message; throws on a truncated or oversized one. */
export function decodeMessage<H>(bytes: Uint8ArrayList): Message<H> {
  if (bytes.byteLength < 8) throw new Error("rpc: truncated message");
  const hLen = bytes.getUint32(0);
  if (4 + hLen + 4 > bytes.byteLength) throw new Error("rpc: truncated header");
  const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + hLen))) as H;
  const bLen = bytes.getUint32(4 + hLen);
  const start = 8 + hLen;
  if (start + bLen !== bytes.byteLength) throw new Error("rpc: body length mismatch");
  return { header, body: bLen ? bytes.subarray(start, start + bLen) : undefined };
}

/** Send buffers, waiting for `drain` whenever the stream asks us to. */
export async function sendAll(stream: Stream, parts: Uint8Array[], signal?: AbortSignal): Promise<void> {
  for (const part of parts) {
    if (!stream.send(part)) await stream.onDrain({ signal });
  }
}

/**
 * Reads whole messages off a long-lived stream, one at a time, keeping any bytes that
 * arrive beyond the current message for the next one.
 */
export class MessageReader {
  private readonly buffered = new Uint8ArrayList();
  private readonly pieces: AsyncIterator<Uint8Array | Uint8ArrayList>;

  constructor(stream: Stream) {
    this.pieces = stream[Symbol.asyncIterator]();
  }

  /** The next message, or null if the stream ended cleanly between messages. */
  async next<H>(): Promise<Message<H> | null> {
    let need = 8;
    for (;;) {
      if (this.buffered.byteLength >= 4) {
        const hLen = this.buffered.getUint32(0);
        need = 8 + hLen;
        if (this.buffered.byteLength >= need) need += this.buffered.getUint32(4 + hLen);
        if (need > MAX_MESSAGE_BYTES) throw new Error("rpc: message too large");
        if (this.buffered.byteLength >= need) {
          const whole = this.buffered.sublist(0, need);
          this.buffered.consume(need);
          return decodeMessage<H>(whole);
        }
      }
      const piece = await this.pieces.next();
      if (piece.done) {
        if (this.buffered.byteLength === 0) return null;
        throw new Error("rpc: stream ended inside a message");
      }
      this.buffered.append(piece.value);
    }
  }
}
