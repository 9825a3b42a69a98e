// A webhook receiver for tests: a real HTTP server (Bun.serve on 127.0.0.1) that records
// every delivery POST (its headers, exact body, whether the signature verifies, and what it
// answered), and fails on demand: its first N POSTs, or while `failing` is set.
import { createHmac, timingSafeEqual } from "node:crypto";

/** One POST as the receiver got it. */
export interface Delivered {
  /** Order of arrival, from 0. */
  seq: number;
  atMs: number;
  ids: string[];
  attempt: number;
  peer: string;
  /** Did X-Meshstore-Signature match the HMAC-SHA256 of the exact body with the secret? */
  signed: boolean;
  records: Array<{ eventId: string; eventName: string; eventSource: string; s3: { bucket: { name: string }; object: { key: string } } }>;
  /** The status the receiver answered. */
  status: number;
}

/** A running receiver. */
export interface Receiver {
  readonly url: string;
  readonly posts: Delivered[];
  /** Every event id received at least once. */
  readonly ids: Set<string>;
  /** Answer 500 to the next this many POSTs. */
  failFirst: number;
  /** Answer 500 while set. */
  failing: boolean;
  /** Wait this long before answering each POST. */
  delayMs: number;
  /** POSTs being answered now, by sending peer (X-Meshstore-Peer). */
  readonly answering: Map<string, number>;
  stop(): Promise<void>;
}

/** The check a receiver makes (what the README shows): constant-time compare of the signature header with the body's HMAC. */
export function verifies(secret: string, body: Uint8Array, header: string | null): boolean {
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
  const got = Buffer.from(header ?? "");
  return got.length === expected.length && timingSafeEqual(got, expected);
}

/** Start a receiver that checks signatures with `secret`. */
export function startReceiver(secret: string, opts: { failFirst?: number; delayMs?: number } = {}): Receiver {
  const posts: Delivered[] = [];
  const ids = new Set<string>();
  const receiver: Receiver = {
    url: "",
    posts,
    ids,
    failFirst: opts.failFirst ?? 0,
    failing: false,
    delayMs: opts.delayMs ?? 0,
    answering: new Map(),
    stop: async () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      if (req.method !== "POST") return new Response("POST only", { status: 405 });
      const body = new Uint8Array(await req.arrayBuffer());
      const parsed = JSON.parse(new TextDecoder().decode(body)) as { Records: Delivered["records"] };
      const fail = receiver.failing || receiver.failFirst > 0;
      if (receiver.failFirst > 0) receiver.failFirst--;
      const status = fail ? 500 : 200;
      const idsHeader = req.headers.get("x-meshstore-event-ids") ?? "";
      posts.push({
        seq: posts.length,
        atMs: Date.now(),
        ids: idsHeader ? idsHeader.split(",") : [],
        attempt: Number(req.headers.get("x-meshstore-delivery-attempt")),
        peer: req.headers.get("x-meshstore-peer") ?? "",
        signed: verifies(secret, body, req.headers.get("x-meshstore-signature")),
        records: parsed.Records,
        status,
      });
      const peer = req.headers.get("x-meshstore-peer") ?? "";
      receiver.answering.set(peer, (receiver.answering.get(peer) ?? 0) + 1);
      if (receiver.delayMs) await Bun.sleep(receiver.delayMs);
      receiver.answering.set(peer, receiver.answering.get(peer)! - 1);
      if (!fail) for (const r of parsed.Records) ids.add(r.eventId);
      return new Response(fail ? "not now" : "ok", { status });
    },
  });
  (receiver as { url: string }).url = `http://127.0.0.1:${server.port}/hook`;
  return receiver;
}
