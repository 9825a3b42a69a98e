// Request/response calls between peers over libp2p streams. A stream carries one call at
// a time (request, then reply) and then goes back to a per-peer pool for the next call,
// so a call costs no stream negotiation; a stream that fails or times out is dropped.
// Each method is defined once (rpc-method.ts): its name, the schemas of its params and
// result, and whether a body may come with it (and how big). The server checks a call
// against it before the handler runs, so a buggy or hostile member's malformed call gets an
// error reply and never reaches handler code; the caller checks the reply the same way.
// Calls travel on one of two lanes (lanes.ts): membership on its own connection,
// everything else on the data connection.
import type { Libp2p, Stream } from "@libp2p/interface";
import type { Static, TSchema } from "@sinclair/typebox";
import { MeshError, RemoteError } from "../errors.ts";
import type { Logger } from "../util/log.ts";
import { ByteBudget, encodeMessage, MessageReader, MessageTooLargeError, sendAll } from "./frames.ts";
import { createLanes, type Lane } from "./lanes.ts";
import type { LinkFilter } from "./link-filter.ts";
import { firstBreach, type RpcMethod } from "./rpc-method.ts";

export { defineMethod, type RpcMethod } from "./rpc-method.ts";

/** The libp2p protocol id of meshstore's RPC on the data lane. */
export const RPC_PROTOCOL = "/meshstore/rpc/2.0.0";
/** The same RPC on the control lane (membership); the protocol id tells the listener the lane. */
export const CONTROL_RPC_PROTOCOL = "/meshstore/rpc-control/2.0.0";
const PROTOCOL_OF: Record<Lane, string> = { data: RPC_PROTOCOL, control: CONTROL_RPC_PROTOCOL };

/** What a handler receives. */
export interface RpcRequest<P> {
  /** The calling peer's id (authenticated by noise). */
  from: string;
  params: P;
  body?: Uint8Array;
  signal: AbortSignal;
}

/** What a handler returns, and what a call resolves with. */
export interface RpcResult<R> {
  result: R;
  body?: Uint8Array;
}

/** A method implementation; its params have passed the method's schema. */
export type RpcHandler<P, R> = (req: RpcRequest<P>) => Promise<RpcResult<R>>;

/** Options of one call. */
export interface CallOptions {
  body?: Uint8Array;
  /** Ends the call early (the HTTP client went away, the worker stopped); the peer's stop and the timeout always do. */
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The connection kind to use (default data); membership calls use the control lane. */
  lane?: Lane;
}

interface RequestHeader {
  m: string;
  p: unknown;
}
type ReplyHeader = { ok: true; r: unknown } | { ok: false; code: string; message: string; status: number };

/** Counts of RPC traffic, by method, for metrics and the membership rate figures. */
export interface RpcCounters {
  sent: Map<string, number>;
  /** Calls sent that failed (unreachable, an error reply, a malformed reply), by method. */
  failed: Map<string, number>;
  received: Map<string, number>;
}

/** The RPC endpoint of one peer. */
export interface Rpc {
  /** Serve `method`: calls that break its contract get an InvalidParams reply (400) and never reach `handler`. */
  register<P extends TSchema, R extends TSchema>(method: RpcMethod<P, R>, handler: RpcHandler<Static<P>, Static<R>>): void;
  /** Stop serving `method` (its part is stopping): later calls get UnknownMethod. */
  unregister(method: RpcMethod): void;
  /** The names of the methods registered here. */
  methods(): string[];
  /** Bytes of inbound request bodies held right now (all streams), for status and tests. */
  readonly inboundBytes: number;
  /** Call `method` on `peer`; a reply that breaks the method's result schema fails as MalformedReply (502). */
  call<P extends TSchema, R extends TSchema>(peer: string, method: RpcMethod<P, R>, params: Static<P>, opts?: CallOptions): Promise<RpcResult<Static<R>>>;
  readonly counters: RpcCounters;
  /** Listen for calls on both lanes. */
  start(): Promise<void>;
  /** Stop listening and drop the pooled streams. */
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** What inbound streams may hold, and for how long (RpcLimits in full; tests shorten the timeouts). */
export interface RpcLimits {
  /** A request that makes no progress for this long is dropped with its stream (a stalled body frees its buffer). */
  stallMs: number;
  /** A pooled stream idle this long between requests is closed (its caller opens a new one). */
  idleMs: number;
  /** Bytes of inbound request bodies (and large headers) buffered at once, across all streams; beyond it, readers wait. */
  budgetBytes: number;
  /** Streams a connected peer may have open per RPC protocol (lane). */
  maxStreamsPerConnection: number;
}

export const DEFAULT_RPC_LIMITS: RpcLimits = {
  stallMs: 15_000,
  idleMs: 5 * 60_000,
  budgetBytes: 256 * 1024 * 1024,
  // A caller pools up to IDLE_STREAMS_PER_PEER streams per lane and opens more only for bursts.
  maxStreamsPerConnection: 256,
};
/** A paused inbound stream may still receive what its flow-control window allowed (yamux: up to 16 MiB). */
const PAUSED_READ_BUFFER_BYTES = 17 * 1024 * 1024;
/** Idle streams kept per peer; calls beyond this many at once open streams that are closed after use. */
const IDLE_STREAMS_PER_PEER = 32;

/** A stream with its message reader, reusable for one call after another. */
interface Channel {
  stream: Stream;
  reader: MessageReader;
}

/** A registered method: its definition and handler. */
interface Registered {
  method: RpcMethod;
  handler: RpcHandler<unknown, unknown>;
}

/** How long a caller refused for a declared size has to read the refusal before its stream is reset. */
const REFUSAL_GRACE_MS = 1000;

/** The longest validation message sent back (a schema error quotes a path, not the value). */
const MAX_ERROR_CHARS = 300;

/** Check a call against its method's params schema; the error to reply with, if it breaks it. */
function breach(method: RpcMethod, params: unknown): MeshError | undefined {
  // (A body over the method's limit never gets this far: the reader refuses its declared size.)
  const why = firstBreach(method.checkParams, params, `${method.name}: params`);
  return why === undefined ? undefined : new MeshError("InvalidParams", why.slice(0, MAX_ERROR_CHARS));
}

/** Create the RPC endpoint on a started libp2p node. */
export function createRpc(libp2p: Libp2p, filter: LinkFilter, log: Logger, stopSignal: AbortSignal, limitsIn: Partial<RpcLimits> = {}): Rpc {
  const limits: RpcLimits = { ...DEFAULT_RPC_LIMITS, ...limitsIn };
  const methods = new Map<string, Registered>();
  const budget = new ByteBudget(limits.budgetBytes);
  /** The largest request body of a header's method (0: none, or an unknown method), known before the body is read. */
  const maxBody = (header: unknown) => {
    const m = (header as Partial<RequestHeader> | null)?.m;
    return typeof m === "string" ? Math.min(methods.get(m)?.method.maxBodyBytes ?? 0, limits.budgetBytes) : 0;
  };
  const counters: RpcCounters = { sent: new Map(), failed: new Map(), received: new Map() };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const lanes = createLanes(libp2p, stopSignal);

  /** Run one call: its header's shape and the method's contract are checked before the handler sees it. */
  async function dispatch(header: unknown, body: Uint8Array | undefined, from: string, signal: AbortSignal): Promise<RpcResult<unknown>> {
    const { m: name, p: params } = (header ?? {}) as Partial<RequestHeader>;
    const registered = typeof name === "string" ? methods.get(name) : undefined;
    // Only registered names are counted: made-up ones must not grow the counters.
    if (!registered) throw new MeshError("UnknownMethod", `no rpc method ${String(name).slice(0, 80)}`);
    bump(counters.received, registered.method.name);
    const error = breach(registered.method, params);
    if (error) throw error;
    return registered.handler({ from, params, body, signal });
  }

  /** Answer calls on one inbound stream, one after another, until the caller closes it. */
  async function serve(stream: Stream, from: string): Promise<void> {
    // The reader times out a stalled request, and an idle pooled stream after limits.idleMs;
    // the stream's own timer would also cut a pooled stream that is merely idle.
    stream.inactivityTimeout = 0;
    stream.maxReadBufferLength = PAUSED_READ_BUFFER_BYTES;
    // A declared size beyond the method's limit is refused before anything is buffered;
    // bodies are charged to the process-wide budget (the reader pauses the stream to wait).
    const reader = new MessageReader(stream, { maxBody, budget, stallMs: limits.stallMs, idleMs: limits.idleMs, pauseBetween: true });
    try {
      await answerAll(stream, from, reader);
    } finally {
      reader.close();
    }
  }

  async function answerAll(stream: Stream, from: string, reader: MessageReader): Promise<void> {
    for (;;) {
      let msg;
      try {
        msg = await reader.next<RequestHeader>();
      } catch (err) {
        if (err instanceof MessageTooLargeError) await refuseOversize(stream, err);
        throw err;
      }
      if (msg === null) break;
      const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(DEFAULT_TIMEOUT_MS)]);
      let reply: Uint8Array[];
      try {
        const out = await dispatch(msg.header, msg.body, from, signal);
        reply = encodeMessage({ ok: true, r: out.result } satisfies ReplyHeader, out.body);
      } catch (err) {
        const e = err instanceof MeshError ? err : new MeshError("InternalError", (err as Error).message);
        if (!(err instanceof MeshError)) log.debug(`rpc handler failed: ${e.message}`);
        reply = encodeMessage({ ok: false, code: e.code, message: e.message, status: e.status } satisfies ReplyHeader);
      }
      if (stream.status !== "open") return;
      await sendAll(stream, reply, signal);
    }
    await stream.close().catch(() => {});
  }

  /**
   * Tell a caller whose declared size breaks the limit why, before the stream is reset:
   * none of its body is read, so the stream cannot carry another call. The reply goes out
   * first and the caller gets a moment to read it and close its end.
   */
  async function refuseOversize(stream: Stream, err: MessageTooLargeError): Promise<void> {
    const signal = AbortSignal.timeout(REFUSAL_GRACE_MS);
    const reply = encodeMessage({ ok: false, code: "InvalidParams", message: err.message, status: 400 } satisfies ReplyHeader);
    await sendAll(stream, reply, signal).catch(() => {});
    await stream.close({ signal }).catch(() => {});
  }

  /** Idle streams by lane and peer (`lane:peer`). */
  const idle = new Map<string, Channel[]>();
  /** An idle pooled stream to `peer` on `lane`, or (when none is open, or `fresh`) a new one. */
  async function acquire(peer: string, lane: Lane, signal: AbortSignal, fresh: boolean): Promise<{ channel: Channel; reused: boolean }> {
    const pool = fresh ? undefined : idle.get(`${lane}:${peer}`);
    while (pool?.length) {
      const channel = pool.pop()!;
      if (channel.stream.status === "open") return { channel, reused: true };
    }
    const connection = await lanes.connectionTo(peer, lane, signal);
    const stream = await connection.newStream(PROTOCOL_OF[lane], { signal });
    // Pooled streams sit idle between calls; the call's own signal bounds each use instead.
    stream.inactivityTimeout = 0;
    return { channel: { stream, reader: new MessageReader(stream) }, reused: false };
  }
  function release(key: string, channel: Channel): void {
    let pool = idle.get(key);
    if (!pool) idle.set(key, (pool = []));
    if (pool.length < IDLE_STREAMS_PER_PEER && channel.stream.status === "open" && !stopSignal.aborted) pool.push(channel);
    else void channel.stream.close().catch(() => {});
  }

  /** One request and its reply on a channel; throws if the stream fails. */
  async function exchange(channel: Channel, method: string, params: unknown, body: Uint8Array | undefined, signal: AbortSignal) {
    const s = channel.stream;
    const onAbort = () => s.abort(new Error("rpc call aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await sendAll(s, encodeMessage({ m: method, p: params } satisfies RequestHeader, body), signal);
      const reply = await channel.reader.next<ReplyHeader>();
      signal.throwIfAborted();
      if (reply === null) throw new Error("stream closed before the reply");
      return reply;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  return {
    counters,
    get inboundBytes() {
      return budget.inUse;
    },
    register(method, handler) {
      if (methods.has(method.name)) throw new Error(`rpc method ${method.name} is registered twice`);
      // Safe: dispatch runs the handler only with params that passed method.params.
      methods.set(method.name, { method, handler: handler as RpcHandler<unknown, unknown> });
    },
    unregister(method) {
      if (methods.get(method.name)?.method === method) methods.delete(method.name);
    },
    methods: () => [...methods.keys()],
    async start() {
      for (const lane of ["data", "control"] as const) {
        await libp2p.handle(
          PROTOCOL_OF[lane],
          (stream, connection) => {
            const from = connection.remotePeer.toString();
            if (filter.isBlocked(from)) {
              stream.abort(new Error("link blocked"));
              return;
            }
            lanes.mark(connection, lane);
            serve(stream, from).catch((err) => {
              stream.abort(err as Error);
              log.debug(`rpc stream from ${from.slice(-6)} failed: ${(err as Error).message}`);
            });
          },
          { maxInboundStreams: limits.maxStreamsPerConnection, maxOutboundStreams: 1024 },
        );
      }
    },
    async stop() {
      for (const pool of idle.values()) for (const c of pool) c.stream.abort(new Error("rpc stopped"));
      idle.clear();
      for (const protocol of Object.values(PROTOCOL_OF)) await libp2p.unhandle(protocol).catch(() => {});
    },
    async call(peer, method, params, opts = {}) {
      if (filter.isBlocked(peer)) throw new RemoteError("PeerUnreachable", `link to ${peer} is blocked`);
      const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS), ...(opts.signal ? [opts.signal] : [])]);
      const name = method.name;
      bump(counters.sent, name);
      return send().catch((err: unknown) => {
        bump(counters.failed, name);
        throw err;
      });
      async function send() {
        // A pooled stream may have died while idle (the connection closed); then try once on a
        // fresh one. Every method is idempotent (LWW writes, content-addressed chunks), so a
        // request the remote did see before the stream died is harmless to repeat.
        const lane = opts.lane ?? "data";
        for (let attempt = 0; ; attempt++) {
          let channel: Channel | undefined;
          let reused = false;
          try {
            ({ channel, reused } = await acquire(peer, lane, signal, attempt > 0));
            const reply = await exchange(channel, name, params, opts.body, signal);
            release(`${lane}:${peer}`, channel);
            if (!reply.header.ok) throw new RemoteError(reply.header.code, reply.header.message);
            const result = reply.header.r;
            // A member may be buggy or hostile: its answer is believed only in the promised shape.
            if (method.checkResult.Check(result)) return { result, body: reply.body };
            const why = firstBreach(method.checkResult, result, `rpc ${name} from ${peer.slice(-6)}: result`) ?? "";
            throw new RemoteError("MalformedReply", why.slice(0, MAX_ERROR_CHARS));
          } catch (err) {
            if (err instanceof RemoteError) throw err;
            channel?.stream.abort(err as Error);
            if (reused && attempt === 0 && !signal.aborted) continue;
            const reason = signal.aborted ? "timed out or aborted" : (err as Error).message;
            throw new RemoteError("PeerUnreachable", `rpc ${name} to ${peer.slice(-6)}: ${reason}`);
          }
        }
      }
    },
  };
}
