// The libp2p node: TCP, noise (with a cipher that works on Bun), yamux, identify, ping,
// and a LAN Kademlia DHT that accepts loopback and private addresses.
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import { identify } from "@libp2p/identify";
import type { Libp2p, PrivateKey } from "@libp2p/interface";
import { kadDHT, removePublicAddressesMapper, type KadDHT } from "@libp2p/kad-dht";
import { ping } from "@libp2p/ping";
import { safeTcp } from "./safe-tcp.ts";
import { createLibp2p } from "libp2p";
import { mkdir, readFile } from "node:fs/promises";
import { writePrivateFile } from "../util/private-file.ts";
import path from "node:path";
import type { LinkFilter } from "./link-filter.ts";
import { reachableAddrs } from "./addresses.ts";
import { noiseCrypto } from "./noise-crypto.ts";
import { meshKeyProtector } from "./protector.ts";
import { HalfOpenGuard } from "./half-open.ts";
import type { MultiaddrConnection } from "@libp2p/interface";
import { StartupError } from "../errors.ts";
import { fileCause } from "../util/file-cause.ts";
import { p2pListenError } from "./listen-errors.ts";

/** An inbound connection must finish its upgrade (nonce, noise, muxer) within this long. */
export const INBOUND_UPGRADE_TIMEOUT_MS = 5_000;
/** Inbound connections being upgraded at once (silent ones are capped lower, per IP, by HalfOpenGuard). */
const MAX_PENDING_INBOUND = 512;

/** The services meshstore runs on libp2p. */
export type MeshLibp2p = Libp2p<{ dht: KadDHT; identify: unknown; ping: unknown }>;

/** The DHT protocol of meshstore meshes (kept apart from the public IPFS DHT). */
export const DHT_PROTOCOL = "/meshstore/kad/1.0.0";

const KEY_FILE = "peer.key";

/** Load the peer's identity from the data folder, or create it on first start. */
export async function loadOrCreateIdentity(dataDir: string): Promise<PrivateKey> {
  const file = path.join(dataDir, KEY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new StartupError(`cannot read the peer's identity key ${file}: ${fileCause(err)}`);
  }
  if (bytes) {
    try {
      return privateKeyFromProtobuf(bytes);
    } catch (err) {
      throw new StartupError(`the peer's identity key ${file} is damaged (${fileCause(err)}); restore it from a backup (without it this peer is a new member)`);
    }
  }
  const key = await generateKeyPair("Ed25519");
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Written whole and fsynced before it is used: a crash never leaves a half key.
  await writePrivateFile(file, privateKeyToProtobuf(key));
  return key;
}

/** Options for the libp2p node. */
export interface Libp2pOptions {
  privateKey: PrivateKey;
  listen: string[];
  /** Addresses to announce instead of the listen addresses (a relay or NAT in front). */
  announce?: string[];
  /** The mesh key: every connection is wrapped in it (protector.ts); there is no way to start without one. */
  meshKey: Uint8Array;
  filter: LinkFilter;
}

/** Create and start the libp2p node. */
export async function startLibp2p(opts: Libp2pOptions): Promise<MeshLibp2p> {
  const { filter } = opts;
  const halfOpen = new HalfOpenGuard();
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen, announce: opts.announce, announceFilter: reachableAddrs },
    transports: [safeTcp()],
    connectionProtector: meshKeyProtector(opts.meshKey, (conn) => halfOpen.spoke(conn as MultiaddrConnection)),
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    connectionGater: {
      // Loopback and private addresses are where meshes live; only partitions are denied.
      denyDialMultiaddr: () => false,
      // Never denies: tracks the connection until it sends the key's nonce (half-open.ts).
      denyInboundConnection: (conn) => {
        halfOpen.admit(conn);
        return false;
      },
      denyDialPeer: (peerId) => filter.isBlocked(peerId.toString()),
      denyInboundEncryptedConnection: (peerId) => filter.isBlocked(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId) => filter.isBlocked(peerId.toString()),
    },
    connectionManager: {
      maxConnections: 512,
      // Each member opens a control and a data connection (lanes.ts), and a mesh on one
      // host dials from one address: libp2p's default of 5 inbound connections per second
      // per address would refuse a starting mesh's own members.
      inboundConnectionThreshold: 50,
      // Above the silent-connection caps, so idle sockets are evicted by HalfOpenGuard
      // rather than filling libp2p's pending slots and refusing real members.
      maxIncomingPendingConnections: MAX_PENDING_INBOUND,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
    },
    // Started below, so a listen address in use becomes one line (listen-errors.ts).
    start: false,
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: removePublicAddressesMapper,
        allowQueryWithZeroPeers: true,
        initialQuerySelfInterval: 500,
      }),
    },
  });
  try {
    await node.start();
  } catch (err) {
    // Addresses that did open are closed again before the error goes up.
    await Promise.resolve(node.stop()).catch(() => {});
    throw p2pListenError(err);
  }
  return node as unknown as MeshLibp2p;
}

/** The part of libp2p's internals `stopLibp2p` reaches for (absent in other versions: then it does nothing). */
interface AddressManagerInternals {
  components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?(): void } } };
}

/**
 * Stop the node and leave no timer behind. libp2p 3's address manager debounces its
 * peer-store update by 1 s on every transport listening or closing, and has no stop: the
 * timer it sets while the node starts or stops would keep the process alive, and the
 * stopped node in memory, for that second. It is cleared here.
 */
export async function stopLibp2p(node: MeshLibp2p): Promise<void> {
  await node.stop();
  (node as unknown as AddressManagerInternals).components?.addressManager?._updatePeerStoreAddresses?.stop?.();
}
