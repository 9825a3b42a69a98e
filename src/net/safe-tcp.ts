// @libp2p/tcp hands the dial's AbortSignal to net.connect. When a dial is aborted before
// the socket connects, net destroys the socket with an AbortError one tick after
// @libp2p/tcp has removed its 'error' listener, and under Bun that error is uncaught and
// takes the whole peer down (seen on shutdown and on dial timeouts). This wrapper keeps
// the signal away from net.connect and applies it itself: an aborted dial rejects at
// once, and a socket that connects afterwards is destroyed quietly.
import { tcp, type TCPOptions } from "@libp2p/tcp";
import type { Multiaddr } from "@multiformats/multiaddr";
import type { Socket } from "node:net";

interface ConnectOptions {
  signal: AbortSignal;
  [key: string]: unknown;
}
interface TcpInternals {
  _connect(ma: Multiaddr, options: ConnectOptions): Promise<Socket>;
}

/** `tcp()` whose dials can be aborted without an uncaught socket error. */
export function safeTcp(init?: TCPOptions): ReturnType<typeof tcp> {
  const factory = tcp(init);
  return (components) => {
    const transport = factory(components);
    const internals = transport as unknown as TcpInternals;
    if (typeof internals._connect !== "function") return transport; // upstream changed: nothing to guard
    const connect = internals._connect.bind(transport);
    internals._connect = (ma, options) => {
      const outer = options.signal;
      outer.throwIfAborted();
      const pending = connect(ma, { ...options, signal: new AbortController().signal });
      return new Promise<Socket>((resolve, reject) => {
        let aborted = false;
        const onAbort = () => {
          aborted = true;
          const err = new Error("dial aborted");
          err.name = "AbortError";
          reject(err);
        };
        outer.addEventListener("abort", onAbort, { once: true });
        pending.then(
          (socket) => {
            outer.removeEventListener("abort", onAbort);
            if (aborted) socket.destroy();
            else resolve(socket);
          },
          (err) => {
            outer.removeEventListener("abort", onAbort);
            reject(err);
          },
        );
      });
    };
    return transport;
  };
}
