// Which remote peers this peer refuses to talk to. Empty in production; the test
// harness fills it to partition a mesh. It is enforced at the connection gater (no
// dials, no inbound connections), on existing connections (hung up) and per RPC stream.

/** The set of peers whose links are cut. */
export interface LinkFilter {
  isBlocked(peerId: string): boolean;
  /** Replace the blocked set; returns the peers newly blocked (whose connections to hang up). */
  setBlocked(peerIds: Iterable<string>): string[];
}

/** Create an empty filter. */
export function createLinkFilter(): LinkFilter {
  let blocked = new Set<string>();
  return {
    isBlocked: (id) => blocked.has(id),
    setBlocked(ids) {
      const next = new Set(ids);
      const added = [...next].filter((id) => !blocked.has(id));
      blocked = next;
      return added;
    },
  };
}
