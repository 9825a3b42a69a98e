// Finding the mesh's members through the Kademlia DHT: every peer provides a key
// derived from the mesh's name and periodically looks up its providers, contacting
// any it does not know alive. This finds members beyond the bootstrap's neighbours and
// lets a peer rejoin through anyone still in the DHT.
import type { PeerId } from "@libp2p/interface";
import type { SingleKadDHT } from "@libp2p/kad-dht";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import type { MeshLibp2p } from "../net/libp2p.ts";
import type { Logger } from "../util/log.ts";
import type { MemberTable } from "./member-table.ts";

/** Provider records are refreshed this often (the DHT's own records live 48 h). */
const REPROVIDE_MS = 10 * 60_000;

/** The DHT key of a mesh. */
export async function meshKey(meshName: string): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`meshstore:${meshName}`)));
}

/** Options for discovery. */
export interface DiscoveryDeps {
  libp2p: MeshLibp2p;
  table: MemberTable;
  meshName: string;
  intervalMs: number;
  log: Logger;
  signal: AbortSignal;
  /** Contact a peer found in the DHT that we do not see alive. */
  contact(peerId: string): Promise<boolean>;
}

/** A running discovery loop. */
export interface Discovery {
  start(): Promise<void>;
  stop(): void;
  /** Provide and look up right now (after joining, so the DHT is not empty). */
  runOnce(): Promise<void>;
}

/** Create the discovery loop. */
export function createDiscovery(deps: DiscoveryDeps): Discovery {
  const { libp2p, table, log, signal } = deps;
  const self = libp2p.peerId.toString();
  let key: CID;
  let timer: ReturnType<typeof setInterval> | undefined;
  let running = false;
  let providedAt = 0;
  let providedToPeers = false;

  /** Providing is a DHT-wide write (k peers), so it runs once the DHT has peers and then rarely. */
  function needsProvide(): boolean {
    if (!providedToPeers) return true;
    return Date.now() - providedAt > REPROVIDE_MS;
  }

  async function provide() {
    for await (const _ of libp2p.services.dht.provide(key, { signal: AbortSignal.any([signal, AbortSignal.timeout(deps.intervalMs)]) })) {
      // drain the query events
    }
  }

  async function lookup() {
    const found: PeerId[] = [];
    const opts = { signal: AbortSignal.any([signal, AbortSignal.timeout(deps.intervalMs)]) };
    for await (const ev of libp2p.services.dht.findProviders(key, opts)) {
      if (ev.name !== "PROVIDER") continue;
      for (const p of ev.providers) {
        const id = p.id.toString();
        if (id === self) continue;
        if (p.multiaddrs.length) await libp2p.peerStore.merge(p.id, { multiaddrs: p.multiaddrs }).catch(() => {});
        found.push(p.id);
      }
    }
    for (const id of new Set(found.map(String))) {
      if (table.get(id)?.state !== "alive") void deps.contact(id);
    }
  }

  async function runOnce() {
    if (running || signal.aborted) return;
    running = true;
    try {
      if (needsProvide()) {
        const hadPeers = ((libp2p.services.dht as SingleKadDHT).routingTable?.size ?? 0) > 0;
        await provide()
          .then(() => {
            providedAt = Date.now();
            providedToPeers = hadPeers;
          })
          .catch((err) => log.debug(`provide failed: ${(err as Error).message}`));
      }
      await lookup().catch((err) => log.debug(`lookup failed: ${(err as Error).message}`));
    } finally {
      running = false;
    }
  }

  return {
    async start() {
      key = await meshKey(deps.meshName);
      timer = setInterval(() => void runOnce(), deps.intervalMs);
    },
    stop() {
      clearInterval(timer);
    },
    runOnce,
  };
}
