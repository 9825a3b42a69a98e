// The wire format of one RPC message: a JSON header and an optional binary body.
//   [u32 header length][header JSON][u32 body length][body bytes]
// One message per direction per stream keeps framing trivial; the body carries chunk
// bytes without base64 or JSON copies.
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

/** Read until the remote closes its writable end, bounded by MAX_MESSAGE_BYTES. */
export async function readToEnd(stream: Stream): Promise<Uint8ArrayList> {
  const all = new Uint8ArrayList();
  for await (const piece of stream) {
    all.append(piece);
    if (all.byteLength > MAX_MESSAGE_BYTES) {
      stream.abort(new Error("rpc: message too large"));
      throw new Error("rpc: message too large");
    }
  }
  return all;
}
