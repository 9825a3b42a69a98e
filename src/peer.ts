// One meshstore peer: its parts are built into a components bag (src/peer/components.ts),
// started in order and stopped in reverse; one AbortController ends every loop.
import type { AbortOptions, Stream, StreamHandler } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import type { CID } from "multiformats/cid";
import type { CreatedKey } from "./auth/access-keys.ts";
import type { ClusterView } from "./api/native.ts";
import { peerView, type ClusterStatus, type PeerView } from "./api/status.ts";
import { resolveConfig, type PeerConfig, type PeerConfigInput } from "./config.ts";
import type { RpcCounters } from "./net/rpc.ts";
import type { QuorumRule } from "./placement/quorum-rule.ts";
import { buildComponents, type Components } from "./peer/components.ts";
import type { DrainState } from "./peer/maintenance.ts";
import { Lifecycle } from "./util/lifecycle.ts";

export type { ClusterStatus, PeerInfo, PeerView } from "./api/status.ts";

/**
 * What tests may do inside a running peer, and nothing more: the rest of its parts stay
 * private. Not for production use.
 */
export interface PeerTestHooks {
  /** Cut links to these peers (replacing any earlier cut); hangs up open connections. */
  partition(blocked: Iterable<string>): Promise<void>;
  /** The RPC methods this peer serves. */
  rpcMethods(): string[];
  /** RPC calls sent and received, by method. */
  readonly rpcCounters: RpcCounters;
  /** Peer ids this peer finds as DHT providers of `key` (discovery's lookup). */
  dhtProviders(key: CID, opts?: AbortOptions): Promise<string[]>;
  /** Serve a test protocol on this peer's libp2p node. */
  handle(protocol: string, handler: StreamHandler): Promise<void>;
  /** Open a stream of a test protocol to a multiaddr. */
  dial(addr: string, protocol: string): Promise<Stream>;
  /** Names of the running parts, in start order. */
  runningParts(): string[];
  /** The keys this peer's own index replicas answer to a search query (no other replica asked). */
  localSearch(bucket: string, query: unknown): Promise<string[]>;
}

/** A running peer. */
export interface Peer extends ClusterView {
  readonly config: PeerConfig;
  readonly peerId: string;
  readonly httpUrl: string;
  readonly s3Url: string;
  /** The admin key this start created for a new mesh (the CLI prints it once), if any. */
  readonly createdAdminKey?: CreatedKey;
  /** The mesh key file this start created for a new mesh (the CLI says where it is), if any. */
  readonly createdMeshKeyFile?: string;
  /** libp2p addresses, each ending in /p2p/<id>. */
  multiaddrs(): string[];
  /** `/cluster/peers`. */
  peers(): PeerView;
  /** `/cluster/status`. */
  status(): ClusterStatus;
  /** Start handing everything to the other peers; reports whether nothing is left here, or why it cannot be yet. */
  drain(): Promise<DrainState>;
  /** Stop draining (harmless when not draining). */
  cancelDrain(): Promise<DrainState>;
  /** Drain (or cancel the drain of) any member: this peer, or another asked over RPC. */
  drainMember(id: string, cancel: boolean, signal?: AbortSignal): Promise<DrainState>;
  /** Take a dead member out of the mesh for good: quorums and the ring stop counting it. */
  removeMember(id: string): Promise<{ removed: string; quorum: QuorumRule }>;
  /** Graceful stop: resolves once every part has stopped; nothing of the peer keeps the process alive. */
  stop(): Promise<void>;
  /** Abrupt stop: no waiting for in-flight work, sockets dropped. */
  kill(): Promise<void>;
  /** For tests only. */
  readonly testHooks: PeerTestHooks;
}

/** Longest wait for any one part of the peer to stop (a graceful stop lets transfers finish for this long). */
const STOP_STEP_MS = 5000;

/** Start a peer with the same config the CLI takes. */
export async function startPeer(input: PeerConfigInput = {}): Promise<Peer> {
  const config = resolveConfig(input);
  const aborter = new AbortController();
  const lifecycle = new Lifecycle();
  let c: Components | undefined;
  try {
    c = await buildComponents(config, lifecycle, aborter.signal);
    await lifecycle.startAll();
    c.servers.ready();
  } catch (err) {
    aborter.abort();
    await lifecycle.stopAll(true, STOP_STEP_MS);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const shutdown = (abrupt: boolean) =>
    (stopping ??= (async () => {
      // The APIs stop taking requests first; those in flight get the stop grace with every
      // other part still running (--stop-grace), then are cut off. Only then does the rest stop.
      await c.servers.stop(abrupt);
      aborter.abort();
      await lifecycle.stopAll(abrupt, STOP_STEP_MS, (part, err) => c.log.warn(`stopping ${part}: ${(err as Error).message}`));
    })());

  return {
    config,
    peerId: c.peerId,
    httpUrl: c.servers.httpUrl,
    s3Url: c.servers.s3Url,
    createdAdminKey: c.adminKey.created,
    createdMeshKeyFile: c.createdMeshKeyFile,
    multiaddrs: () => c.libp2p.getMultiaddrs().map(String),
    peers: () => peerView(c.table),
    status: () => c.status.status(),
    drain: () => c.maintenance.drain(),
    cancelDrain: () => c.maintenance.cancelDrain(),
    drainMember: (id, cancel, signal) => c.maintenance.drainMember(id, cancel, signal),
    removeMember: (id) => c.maintenance.removeMember(id),
    stop: () => shutdown(false),
    kill: () => shutdown(true),
    testHooks: testHooksOf(c, lifecycle),
  };
}

function testHooksOf(c: Components, lifecycle: Lifecycle): PeerTestHooks {
  return {
    async partition(blocked) {
      for (const id of c.links.setBlocked(blocked)) await c.libp2p.hangUp(peerIdFromString(id)).catch(() => {});
    },
    rpcMethods: () => c.rpc.methods(),
    rpcCounters: c.rpc.counters,
    async dhtProviders(key, opts) {
      const found: string[] = [];
      for await (const ev of c.libp2p.services.dht.findProviders(key, opts)) {
        if (ev.name === "PROVIDER") for (const p of ev.providers) found.push(p.id.toString());
      }
      return found;
    },
    handle: (protocol, handler) => c.libp2p.handle(protocol, handler),
    dial: (addr, protocol) => c.libp2p.dialProtocol(multiaddr(addr), protocol),
    runningParts: () => lifecycle.running(),
    localSearch: (bucket, query) => c.search.localAnswer(bucket, query),
  };
}
