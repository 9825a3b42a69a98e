// Request/response calls between peers over libp2p streams: one stream per call, one
// framed message each way. Handlers are registered by method name.
import type { Libp2p, PeerId, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { MeshError, RemoteError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import { decodeMessage, encodeMessage, readToEnd, sendAll } from "./frames.ts";
import type { LinkFilter } from "./link-filter.ts";

/** The libp2p protocol id of meshstore's RPC. */
export const RPC_PROTOCOL = "/meshstore/rpc/1.0.0";

/** What a handler receives. */
export interface RpcRequest<P = any> {
  /** The calling peer's id (authenticated by noise). */
  from: string;
  params: P;
  body?: Uint8Array;
  signal: AbortSignal;
}

/** What a handler returns. */
export interface RpcResult<R = any> {
  result: R;
  body?: Uint8Array;
}

/** A method implementation. */
export type RpcHandler = (req: RpcRequest) => Promise<RpcResult>;

/** Options of one call. */
export interface CallOptions {
  body?: Uint8Array;
  signal?: AbortSignal;
  timeoutMs?: number;
}

interface RequestHeader {
  m: string;
  p: unknown;
}
type ReplyHeader = { ok: true; r: unknown } | { ok: false; code: string; message: string; status: number };

/** Counts of RPC traffic, by method, for metrics and the membership rate figures. */
export interface RpcCounters {
  sent: Map<string, number>;
  received: Map<string, number>;
}

/** The RPC endpoint of one peer. */
export interface Rpc {
  register(method: string, handler: RpcHandler): void;
  call<R = any>(peer: string, method: string, params: unknown, opts?: CallOptions): Promise<RpcResult<R>>;
  readonly counters: RpcCounters;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** Create the RPC endpoint on a started libp2p node. */
export function createRpc(libp2p: Libp2p, filter: LinkFilter, log: Logger, stopSignal: AbortSignal): Rpc {
  const handlers = new Map<string, RpcHandler>();
  const counters: RpcCounters = { sent: new Map(), received: new Map() };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const peerIds = new Map<string, PeerId>();
  const toPeerId = (id: string) => {
    let p = peerIds.get(id);
    if (!p) peerIds.set(id, (p = peerIdFromString(id)));
    return p;
  };

  async function serve(stream: Stream, from: string): Promise<void> {
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(DEFAULT_TIMEOUT_MS)]);
    let reply: Uint8Array[];
    try {
      const msg = decodeMessage<RequestHeader>(await readToEnd(stream));
      const handler = handlers.get(msg.header.m);
      bump(counters.received, msg.header.m);
      if (!handler) throw new MeshError("UnknownMethod", `no rpc method ${msg.header.m}`, 400);
      const out = await handler({ from, params: msg.header.p, body: msg.body, signal });
      reply = encodeMessage({ ok: true, r: out.result } satisfies ReplyHeader, out.body);
    } catch (err) {
      const e = err instanceof MeshError ? err : new MeshError("InternalError", (err as Error).message, 500);
      if (!(err instanceof MeshError)) log.debug(`rpc handler failed: ${e.message}`);
      reply = encodeMessage({ ok: false, code: e.code, message: e.message, status: e.status } satisfies ReplyHeader);
    }
    await sendAll(stream, reply, signal);
    await stream.close({ signal });
  }

  return {
    counters,
    register(method, handler) {
      handlers.set(method, handler);
    },
    async start() {
      await libp2p.handle(
        RPC_PROTOCOL,
        (stream, connection) => {
          const from = connection.remotePeer.toString();
          if (filter.isBlocked(from)) {
            stream.abort(new Error("link blocked"));
            return;
          }
          serve(stream, from).catch((err) => {
            stream.abort(err as Error);
            log.debug(`rpc stream from ${from.slice(-6)} failed: ${(err as Error).message}`);
          });
        },
        { maxInboundStreams: 1024, maxOutboundStreams: 1024 },
      );
    },
    async stop() {
      await libp2p.unhandle(RPC_PROTOCOL).catch(() => {});
    },
    async call(peer, method, params, opts = {}) {
      if (filter.isBlocked(peer)) throw new RemoteError("PeerUnreachable", `link to ${peer} is blocked`, 503);
      const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS), ...(opts.signal ? [opts.signal] : [])]);
      let stream: Stream | undefined;
      try {
        // One protocol only: skip the extra negotiation round trip (optimistic select).
        stream = await libp2p.dialProtocol(toPeerId(peer), RPC_PROTOCOL, { signal });
        const s = stream;
        const onAbort = () => s.abort(new Error("rpc call aborted"));
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          bump(counters.sent, method);
          await sendAll(s, encodeMessage({ m: method, p: params } satisfies RequestHeader, opts.body), signal);
          await s.close({ signal });
          const reply = decodeMessage<ReplyHeader>(await readToEnd(s));
          signal.throwIfAborted();
          if (!reply.header.ok) throw new RemoteError(reply.header.code, reply.header.message, reply.header.status);
          return { result: reply.header.r as any, body: reply.body };
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
      } catch (err) {
        stream?.abort(err as Error);
        if (err instanceof RemoteError) throw err;
        const reason = signal.aborted ? "timed out or aborted" : (err as Error).message;
        throw new RemoteError("PeerUnreachable", `rpc ${method} to ${peer.slice(-6)}: ${reason}`, 503);
      }
    },
  };
}
