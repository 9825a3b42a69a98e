// Two kinds of connection to each peer. Membership probes ride a "control" connection of
// their own and never share one with chunk transfers on the "data" lane: on a slow or
// lossy link a probe queued behind megabytes of chunk data times out although the peer
// is fine, and a false death moves the ring, which starts repair traffic, which causes
// more false deaths. Separate TCP connections keep their own queues and congestion windows.
//
// A connection's lane is fixed by whoever opens our first stream on it: the dialer marks
// it when it dials it for a lane, the listener when a stream of that lane's protocol
// arrives. A connection neither side has marked (libp2p's own dials, for the DHT and
// identify) is used for neither lane, so the two sides never disagree about one.
import type { Connection, Libp2p, PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";

/** Which kind of traffic a connection carries. */
export type Lane = "control" | "data";

/** Picks (and dials) the connection of a lane to a peer. */
export interface Lanes {
  /** An open connection of `lane` to `peer`, dialled when there is none. */
  connectionTo(peer: string, lane: Lane, signal: AbortSignal): Promise<Connection>;
  /** Record the lane of a connection a stream of that lane arrived on (the first mark wins). */
  mark(connection: Connection, lane: Lane): void;
}

/** Longest a shared dial may take; each caller also stops waiting when its own signal aborts. */
const DIAL_TIMEOUT_MS = 10_000;
/** A forced dial can still hand back a connection that another lane's dial claimed; try again this often. */
const DIAL_ATTEMPTS = 3;

/** Create the lane bookkeeping of one libp2p node. */
export function createLanes(libp2p: Libp2p, stopSignal: AbortSignal): Lanes {
  const lanes = new WeakMap<Connection, Lane>();
  const dialing = new Map<string, Promise<Connection>>();
  const peerIds = new Map<string, PeerId>();
  const toPeerId = (id: string) => {
    let p = peerIds.get(id);
    if (!p) peerIds.set(id, (p = peerIdFromString(id)));
    return p;
  };

  async function dialFor(peer: PeerId, lane: Lane): Promise<Connection> {
    const signal = AbortSignal.any([stopSignal, AbortSignal.timeout(DIAL_TIMEOUT_MS)]);
    for (let attempt = 0; attempt < DIAL_ATTEMPTS; attempt++) {
      const conn = await libp2p.dial(peer, { force: true, signal });
      const current = lanes.get(conn);
      if (current === undefined) lanes.set(conn, lane);
      if (current === undefined || current === lane) return conn;
    }
    throw new Error(`no ${lane} connection to ${peer.toString().slice(-6)}`);
  }

  return {
    mark(connection, lane) {
      if (!lanes.has(connection)) lanes.set(connection, lane);
    },
    async connectionTo(peer, lane, signal) {
      const id = toPeerId(peer);
      const conns = libp2p.getConnections(id).filter((c) => c.status === "open");
      const open = conns.find((c) => lanes.get(c) === lane);
      if (open) return open;
      // A connection we dialed that carries none of our streams yet (libp2p dialed it for
      // the DHT or a bootstrap) saves a handshake. Only its dialer may claim it, so the
      // two ends never claim one connection for different lanes.
      const spare = conns.find((c) => c.direction === "outbound" && !lanes.has(c));
      if (spare) {
        lanes.set(spare, lane);
        return spare;
      }
      const key = `${lane}:${peer}`;
      let pending = dialing.get(key);
      if (!pending) {
        pending = dialFor(id, lane).finally(() => dialing.delete(key));
        // Waiters that gave up earlier must not leave the failure unhandled.
        pending.catch(() => {});
        dialing.set(key, pending);
      }
      return abortable(pending, signal);
    },
  };
}

/** `promise`, or a rejection as soon as `signal` aborts (the work itself goes on for other waiters). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}
