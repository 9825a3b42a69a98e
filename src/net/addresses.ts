// Which of a peer's addresses other hosts can use.
import type { Multiaddr } from "@multiformats/multiaddr";

/** Is this a loopback multiaddr (127.0.0.0/8 or ::1)? */
export function isLoopbackAddr(addr: Multiaddr | string): boolean {
  return /^\/ip4\/127\.|^\/ip6\/::1\//.test(addr.toString());
}

/**
 * The addresses worth telling other hosts: loopback ones only reach this host, so they
 * are dropped whenever the peer has any other (a peer bound to 0.0.0.0 that advertised
 * 127.0.0.1 would send its partners dialling themselves). A mesh that lives on one host
 * has only loopback addresses and keeps them.
 */
export function reachableAddrs<T extends Multiaddr | string>(addrs: T[]): T[] {
  const remote = addrs.filter((a) => !isLoopbackAddr(a));
  return remote.length ? remote : addrs;
}
