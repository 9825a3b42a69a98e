// Inbound connections that have not yet sent the mesh key's nonce (the first bytes of
// every connection, see protector.ts). A member sends it within a round trip; a socket
// that sits there silent is a scan, a stuck client or an attack. libp2p refuses new
// inbound connections while its pending-upgrade count is at the limit, so a few idle
// sockets held open until the upgrade timeout would lock real members out; here the
// silent ones are capped per remote IP and in all, and a newcomer over the cap evicts
// the OLDEST silent one instead of being refused.
import type { MultiaddrConnection } from "@libp2p/interface";

/** Silent inbound connections kept per remote IP. */
export const HALF_OPEN_PER_IP = 32;
/** Silent inbound connections kept in all. */
export const HALF_OPEN_TOTAL = 256;

/** Tracks silent inbound connections, oldest first. */
export class HalfOpenGuard {
  /** Insertion order is age order. */
  private readonly silent = new Map<MultiaddrConnection, string>();
  /** Connections evicted so far (for status and tests). */
  evicted = 0;

  constructor(
    private readonly perIp = HALF_OPEN_PER_IP,
    private readonly total = HALF_OPEN_TOTAL,
  ) {}

  /** A new inbound connection: track it, evicting the oldest silent one over a cap. */
  admit(conn: MultiaddrConnection): void {
    const ip = hostOf(conn);
    let sameIp = 0;
    for (const other of this.silent.values()) if (other === ip) sameIp++;
    if (sameIp >= this.perIp) this.evict([...this.silent].find(([, i]) => i === ip)![0]);
    if (this.silent.size >= this.total) this.evict(this.silent.keys().next().value!);
    this.silent.set(conn, ip);
    conn.addEventListener("close", () => this.silent.delete(conn), { once: true });
  }

  /** The connection sent its nonce: it is a key holder's (or at least speaks the protocol). */
  spoke(conn: MultiaddrConnection): void {
    this.silent.delete(conn);
  }

  /** Silent connections tracked now. */
  get size(): number {
    return this.silent.size;
  }

  private evict(conn: MultiaddrConnection): void {
    this.silent.delete(conn);
    this.evicted++;
    conn.abort(new Error("evicted: silent inbound connection over the limit"));
  }
}

function hostOf(conn: MultiaddrConnection): string {
  const c = conn.remoteAddr.getComponents();
  return c.find((x) => x.name === "ip4" || x.name === "ip6")?.value ?? conn.remoteAddr.toString();
}
