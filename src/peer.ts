// One meshstore peer: the components bag. Parts start in order (identity, libp2p, RPC,
// membership, discovery, HTTP) and stop in reverse; one AbortController ends every loop.
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import { writePrivateFile } from "./util/private-file.ts";
import { makePrivateDir } from "./util/private-dir.ts";
import { existsSync } from "node:fs";
import { createNativeApi, type ClusterView } from "./api/native.ts";
import { createS3Handler } from "./api/s3/handler.ts";
import { startingResponse } from "./api/starting.ts";
import { ClientLimits } from "./api/client-limits.ts";
import { nativeErrors } from "./api/errors.ts";
import { s3Errors } from "./api/s3/errors.ts";
import { createAccessKeys, type AccessKeys, type CreatedKey } from "./auth/access-keys.ts";
import { createSecretSealer, sealClearRows } from "./auth/sealed-secret.ts";
import { bearerAuth } from "./auth/guard.ts";
import { ConflictError, NotFoundError, QuorumError } from "./errors.ts";
import { createMultipart } from "./objects/multipart.ts";
import { serveHttp } from "./api/http-server.ts";
import { ADMIN_KEY_FILE, resolveConfig, type PeerConfig, type PeerConfigInput } from "./config.ts";
import { createDiscovery, type Discovery } from "./membership/discovery.ts";
import { MemberTable, type MemberState } from "./membership/member-table.ts";
import { Roster } from "./membership/roster.ts";
import { createSwim, type Swim } from "./membership/swim.ts";
import { createLinkFilter, type LinkFilter } from "./net/link-filter.ts";
import { loadOrCreateIdentity, startLibp2p, type MeshLibp2p } from "./net/libp2p.ts";
import { reachableAddrs } from "./net/addresses.ts";
import { advertisedUrl } from "./api/advertise.ts";
import { noiseCryptoName } from "./net/noise-crypto.ts";
import { createRpc, type Rpc } from "./net/rpc.ts";
import { resolveMeshKey } from "./net/mesh-key.ts";
import { createLogger, type Logger } from "./util/log.ts";
import { createHlc, decodeTimestamp } from "./util/hlc.ts";
import { openChunkStore } from "./store/chunk-store.ts";
import { openIndexStore } from "./store/index-store.ts";
import { createPlacement } from "./placement/placement.ts";
import type { QuorumRule } from "./placement/quorum-rule.ts";
import { createIndexClient } from "./metadata/index-client.ts";
import { MESH_WIDE_SHARDS } from "./metadata/keys.ts";
import { createChunkClient } from "./objects/chunk-client.ts";
import { createObjectService } from "./objects/object-service.ts";
import path from "node:path";
import { createRepairService } from "./repair/repair-service.ts";
import { sleep } from "./util/sleep.ts";

/** A member as `/cluster/peers` shows it. */
export interface PeerInfo {
  id: string;
  addrs: string[];
  http?: string;
  state: MemberState;
  lastSeenMs: number;
  incarnation: number;
}

/** A running peer. */
export interface Peer extends ClusterView {
  readonly config: PeerConfig;
  readonly peerId: string;
  readonly libp2p: MeshLibp2p;
  readonly rpc: Rpc;
  readonly table: MemberTable;
  /** Peers whose links are cut (test partitions). */
  readonly links: LinkFilter;
  readonly httpUrl: string;
  readonly s3Url: string;
  /** The admin key this start created for a new mesh (the CLI prints it once), if any. */
  readonly createdAdminKey?: CreatedKey;
  /** The mesh key file this start created for a new mesh (the CLI says where it is), if any. */
  readonly createdMeshKeyFile?: string;
  /** libp2p addresses, each ending in /p2p/<id>. */
  multiaddrs(): string[];
  /** `/cluster/peers`. */
  peers(): { self: PeerInfo; peers: PeerInfo[] };
  /** `/cluster/status`. */
  status(): Record<string, unknown>;
  /** Cut links to these peers (replacing any earlier cut); hangs up open connections. */
  partition(blocked: Iterable<string>): Promise<void>;
  /** Start handing everything to the other peers; reports whether nothing is left here. */
  drain(): Promise<{ draining: boolean; safeToStop: boolean }>;
  /** Take a dead member out of the mesh for good: quorums and the ring stop counting it. */
  removeMember(id: string): Promise<{ removed: string; quorum: QuorumRule }>;
  /** Graceful stop. */
  stop(): Promise<void>;
  /** Abrupt stop: no waiting for in-flight work, sockets dropped. */
  kill(): Promise<void>;
}

/** File in the data folder listing every member this peer has known (src/membership/roster.ts). */
const ROSTER_FILE = "members.json";

/** The peer id at the end of a bootstrap multiaddr (config validation made sure there is one). */
function bootstrapPeerId(addr: string): string {
  return multiaddr(addr).getComponents().find((c) => c.name === "p2p")?.value ?? "";
}

/** Longest wait for any one part of the peer to stop. */
const STOP_STEP_MS = 5000;

/** Start a peer with the same config the CLI takes. */
export async function startPeer(input: PeerConfigInput = {}): Promise<Peer> {
  const config = resolveConfig(input);
  // Identity, mesh key, admin key, index and objects: nobody but the owner may enter.
  const tightened = await makePrivateDir(config.dataDir);
  const privateKey = await loadOrCreateIdentity(config.dataDir);
  const meshKey = await resolveMeshKey(config.dataDir, config.meshKeyFile, config.bootstrap.length > 0);
  const links = createLinkFilter();
  const aborter = new AbortController();
  const signal = aborter.signal;
  const libp2p = await startLibp2p({ privateKey, listen: config.p2pListen, announce: config.p2pAnnounce, meshKey: meshKey.key.psk, filter: links });
  const peerId = libp2p.peerId.toString();
  const log: Logger = createLogger(config.logLabel ?? peerId.slice(-6), config.logSink, config.logLevel);
  if (tightened) log.warn(`the data folder ${config.dataDir} was open to other users: ${tightened} files and folders in it are now private to this user`);
  const stops: Array<(abrupt: boolean) => unknown> = [() => libp2p.stop()];
  let stopped = false;

  try {
    const rpc = createRpc(libp2p, links, log.child("rpc"), signal, config.rpcLimits);
    await rpc.start();

    const multiaddrs = () => libp2p.getMultiaddrs().map(String);
    // Incarnation starts at the boot time so a restarted peer outranks its old "dead" record.
    const table = new MemberTable({ id: peerId, addrs: multiaddrs(), state: "alive", inc: Date.now() });
    table.onChange((m, prev) => log.info(`member ${m.id.slice(-6)}: ${prev ?? "new"} -> ${m.state}`));
    // Every member ever known, on disk: quorums count them even while they are unreachable.
    const roster = await Roster.open(path.join(config.dataDir, ROSTER_FILE), peerId, config.bootstrap.map(bootstrapPeerId));
    stops.push(() => roster.close());
    for (const rec of roster.removedRecords()) table.apply(rec);
    table.onRecord((rec) => roster.note(rec));
    const livePeers = () => [peerId, ...table.idsIn("alive")];

    // Storage: chunk files and the index shards this peer replicates.
    const chunkStore = await openChunkStore({ dir: path.join(config.dataDir, "chunks") });
    const indexStore = await openIndexStore(path.join(config.dataDir, "index"));
    stops.push(() => indexStore.close());
    // Access-key secrets enter the index sealed with a key derived from the mesh key.
    const sealer = createSecretSealer(meshKey.key.psk);
    const resealed = await sealClearRows(indexStore, sealer);
    if (resealed) log.info(`sealed ${resealed} access key secret(s) an earlier version stored in clear`);
    const hlc = createHlc(peerId);
    const placement = createPlacement(table, config.rf, config.repairDelayMs, () => (table.self.draining ? roster.memberIds() : [...roster.memberIds(), peerId]), MESH_WIDE_SHARDS);
    const startQuorum = placement.quorum();
    if (startQuorum.r < config.rf) {
      log.warn(`this mesh has ${startQuorum.members} member(s): objects are kept in ${startQuorum.r} cop${startQuorum.r === 1 ? "y" : "ies"} until more peers join (rf ${config.rf})`);
    }
    const isExpiredTombstone = (ts: string) => Date.now() - decodeTimestamp(ts).wall > config.repair.tombstoneTtlMs;
    const index = createIndexClient({
      self: peerId,
      store: indexStore,
      rpc,
      placement,
      log: log.child("index"),
      isExpiredTombstone,
      livePeers,
      observe: (ts) => {
        try {
          hlc.observe(decodeTimestamp(ts));
        } catch (err) {
          log.warn(`ignoring a timestamp from the future: ${(err as Error).message}`);
        }
      },
    });
    index.serve();
    const chunks = createChunkClient({ self: peerId, store: chunkStore, rpc, placement, log: log.child("chunks"), isAlive: (id) => id === peerId || table.get(id)?.state === "alive" });
    chunks.serve();
    // One set of client limits for both APIs of this peer.
    const limits = new ClientLimits(config.limits);
    const objects = createObjectService({
      reserveUploadMemory: (bytes) => limits.reserveUpload(bytes),
      self: peerId,
      index,
      chunks,
      placement,
      hlc,
      chunkSize: config.chunkSize,
      inlineMaxBytes: config.inlineMaxBytes,
      indexShards: config.indexShards,
      livePeers,
      rpc,
    });
    objects.serve();
    const multipart = createMultipart({ self: peerId, objects, index, placement, hlc, indexShards: config.indexShards });
    const keys = createAccessKeys({ self: peerId, index, placement, hlc, rpc, livePeers, sealer });
    keys.serve();
    if (!config.auth) log.warn("AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach the HTTP and S3 ports can read, write and delete everything");
    // A peer that is joining (or restarted while its partners are down) has no write quorum
    // yet: it asserts the admin key once it has one.
    let createdAdminKey: CreatedKey | undefined;
    try {
      createdAdminKey = await provisionAdminKey(config, keys);
    } catch (err) {
      if (!(err instanceof QuorumError)) throw err;
      void retryUntilQuorum(() => provisionAdminKey(config, keys), signal, log);
    }
    /** A member dead for longer than the repair delay has left the live ring (placement.ts). */
    const outOfRing = (m: { state: MemberState; stateSinceMs: number }) => m.state === "dead" && Date.now() - m.stateSinceMs >= config.repairDelayMs;
    const repair = createRepairService({
      self: peerId,
      config: config.repair,
      indexShards: config.indexShards,
      chunkStore,
      indexStore,
      chunks,
      index,
      placement,
      rpc,
      isExpiredTombstone,
      uploading: () => objects.uploading(),
      knownPeers: () => {
        const now = Date.now();
        return table.others().filter((m) => m.state !== "dead" || now - m.stateSinceMs < config.repair.tombstoneTtlMs).map((m) => m.id);
      },
      gcPeers: () => table.others().filter((m) => !outOfRing(m)).map((m) => m.id),
      departedMembers: () => table.others().filter(outOfRing).map((m) => ({ id: m.id, leftRingMs: m.stateSinceMs + config.repairDelayMs })),
      log,
      signal,
    });

    // The servers listen before the peer object below exists: until it does, every route answers 503.
    let ready = false;
    const httpErrors = nativeErrors(log.child("http"));
    const nativeApp = createNativeApi(
      { peerId, peers: () => peer.peers(), status: () => peer.status(), drain: () => peer.drain(), removeMember: (id) => peer.removeMember(id) },
      objects,
      { authenticate: bearerAuth(keys, config.auth, limits), required: config.auth, keys },
      httpErrors,
    );
    const serveOptions = { admit: (request: Request, ip: string) => limits.admit(request, ip), idleMs: config.limits.bodyIdleMs, onBodyTimeout: () => limits.bodyTimedOut() };
    const httpServer = await serveHttp((r) => (ready ? nativeApp.handle(r) : startingResponse(httpErrors, r)), config.http, log.child("http"), httpErrors, serveOptions);
    stops.push((abrupt: boolean) => httpServer.stop(abrupt));
    const s3ErrorsOfPeer = s3Errors(log.child("s3"));
    const s3Handler = createS3Handler({ objects, multipart, keys, authEnabled: config.auth, limiter: limits, errors: s3ErrorsOfPeer });
    const s3Server = await serveHttp((r) => (ready ? s3Handler(r) : startingResponse(s3ErrorsOfPeer, r)), config.s3, log.child("s3"), s3ErrorsOfPeer, serveOptions);
    stops.push((abrupt: boolean) => s3Server.stop(abrupt));
    const httpUrl = advertisedUrl(config.advertiseHttp, config.http.host, httpServer.port, multiaddrs());
    const s3Url = advertisedUrl(config.advertiseS3, config.s3.host, s3Server.port, multiaddrs());

    table.refreshSelf({ http: httpUrl });

    const swim: Swim = createSwim({
      table,
      rpc,
      config: config.membership,
      log: log.child("swim"),
      random: config.random,
      learnAddrs: async (id, addrs) => {
        // Another host's loopback addresses would lead us back to ourselves.
        const ma = reachableAddrs(addrs).map((a) => multiaddr(a));
        if (ma.length) await libp2p.peerStore.merge(peerIdFromString(id), { multiaddrs: ma });
      },
      forgetAddrs: async (id) => {
        await libp2p.peerStore.delete(peerIdFromString(id));
      },
    });
    swim.start();
    stops.push(() => swim.stop());
    repair.start();
    stops.push(() => repair.stopped());
    // A member changing state may change the ring: check placement soon rather than at the next tick.
    table.onChange(() => repair.wake());

    const discovery: Discovery = createDiscovery({
      libp2p,
      table,
      meshName: config.meshName,
      intervalMs: config.membership.discoveryIntervalMs,
      log: log.child("discovery"),
      signal,
      contact: (id) => swim.contact(id),
    });
    await discovery.start();
    stops.push(() => discovery.stop());

    const started = Date.now();
    // Local chunk counts for /cluster/status come from a scan of the folder: serve the last
    // result and refresh it in the background when it is more than a second old.
    let localStorage = await chunkStore.stats();
    let storageAt = Date.now();
    const storageStats = () => {
      if (Date.now() - storageAt > 1000) {
        storageAt = Date.now();
        void chunkStore.stats().then((s) => (localStorage = s), () => {});
      }
      return localStorage;
    };
    const joinLoop = bootstrapLoop(config, libp2p, swim, table, discovery, log, signal);

    const peer: Peer = {
      config,
      peerId,
      libp2p,
      rpc,
      table,
      links,
      httpUrl,
      s3Url,
      createdAdminKey,
      createdMeshKeyFile: meshKey.created ? meshKey.key.file : undefined,
      multiaddrs,
      peers() {
        const now = Date.now();
        const info = (m: { id: string; addrs: string[]; http?: string; state: MemberState; inc: number }, lastSeenMs: number): PeerInfo => ({
          id: m.id,
          addrs: m.addrs,
          http: m.http,
          state: m.state,
          lastSeenMs,
          incarnation: m.inc,
        });
        return {
          self: info(table.self, now),
          peers: table
            .others()
            .sort((a, b) => a.id.localeCompare(b.id))
            .map((m) => info(m, m.lastSeenMs)),
        };
      },
      status() {
        const others = table.others();
        const count = (s: MemberState) => others.filter((m) => m.state === s).length;
        const uptimeS = Math.max(1, (Date.now() - started) / 1000);
        return {
          peerId,
          rf: config.rf,
          peers: { alive: count("alive") + 1, suspect: count("suspect"), dead: count("dead"), known: others.length + 1 },
          noiseCrypto: noiseCryptoName,
          rpc: { inboundBodyBytes: rpc.inboundBytes },
          membership: { messagesSent: swim.messagesSent, probesStarted: swim.probesStarted, messagesPerSecond: +(swim.messagesSent / uptimeS).toFixed(2), healthScore: swim.healthScore },
          storage: storageStats(),
          badReplicas: chunks.badReplicas,
          ...repair.status(),
          quorum: placement.quorum(),
          meshKey: { fingerprint: meshKey.key.fingerprint },
          limits: limits.status(),
          draining: table.self.draining === true,
          uptimeSeconds: Math.round(uptimeS),
          process: { pid: process.pid, rssBytes: process.memoryUsage.rss() },
        };
      },
      async partition(blocked) {
        for (const id of links.setBlocked(blocked)) await libp2p.hangUp(peerIdFromString(id)).catch(() => {});
      },
      async drain() {
        if (!table.self.draining) {
          swim.announce(table.startDraining());
          log.info("draining: handing all chunks and index rows to the other peers");
        }
        repair.wake();
        return { draining: true, safeToStop: await repair.empty() };
      },
      async removeMember(id) {
        const m = table.get(id);
        if (m && (m.state === "alive" || m.state === "suspect")) {
          throw new ConflictError(`member ${id} is ${m.state}: only a dead member can be removed; drain a live one instead`, "MemberNotDead");
        }
        if (!m && !roster.memberIds().includes(id)) throw new NotFoundError(`no member ${id} in this mesh`, "NoSuchMember");
        const rec = m ? table.remove(id) : table.apply({ id, addrs: [], state: "removed", inc: roster.incarnation(id) });
        if (rec) swim.announce(rec);
        await roster.flush();
        log.warn(`member ${id.slice(-6)} removed from the mesh by an operator; quorums now count ${placement.quorum().members} member(s)`);
        repair.wake();
        return { removed: id, quorum: placement.quorum() };
      },
      stop: () => shutdown(false),
      kill: () => shutdown(true),
    };
    ready = true;

    async function shutdown(abrupt: boolean) {
      if (stopped) return;
      stopped = true;
      aborter.abort();
      if (!abrupt) await joinLoop.catch(() => {});
      // Each part gets a bounded time to stop, so one stuck part never keeps the peer up.
      for (const stop of stops.reverse()) {
        await Promise.race([Promise.resolve(stop(abrupt)).catch(() => {}), sleep(STOP_STEP_MS)]);
      }
    }

    return peer;
  } catch (err) {
    aborter.abort();
    for (const stop of stops.reverse()) await Promise.resolve(stop(true)).catch(() => {});
    throw err;
  }
}

/**
 * The admin key: MESH_ADMIN_KEY/SECRET are (re)asserted on every start. Otherwise a peer
 * that starts a mesh of its own (no bootstrap) and sees no admin key anywhere creates one
 * and writes it, readable only by the owner, to the data folder. Looking for an admin key
 * rather than at "first start" means a first start that failed half-way, or one made with
 * --insecure-no-auth, still ends with an admin key.
 */
async function provisionAdminKey(config: PeerConfig, keys: AccessKeys): Promise<CreatedKey | undefined> {
  if (config.admin) {
    const existing = await keys.get(config.admin.accessKeyId);
    if (existing?.admin && existing.secretAccessKey === config.admin.secretAccessKey) return undefined;
    await keys.put({ ...config.admin, name: "admin (MESH_ADMIN_KEY)", admin: true, buckets: {}, createdMs: Date.now() });
    return undefined;
  }
  if (!config.auth || config.bootstrap.length > 0) return undefined;
  const file = path.join(config.dataDir, ADMIN_KEY_FILE);
  if (existsSync(file) || (await keys.list()).some((k) => k.admin)) return undefined;
  const created = await keys.create({ name: "admin", admin: true });
  await writePrivateFile(file, JSON.stringify({ accessKeyId: created.accessKeyId, secretAccessKey: created.secretAccessKey, token: created.token }, null, 2) + "\n");
  return created;
}

/** Run `work` again every second while it fails for want of a quorum, until it succeeds or the peer stops. */
async function retryUntilQuorum(work: () => Promise<unknown>, signal: AbortSignal, log: Logger): Promise<void> {
  while (!signal.aborted) {
    await sleep(1000, signal);
    if (signal.aborted) return;
    try {
      await work();
      return;
    } catch (err) {
      if (!(err instanceof QuorumError)) return log.warn(`admin key: ${(err as Error).message}`);
    }
  }
}

/** Join through the bootstrap addresses, retrying until one answers; rejoin if we end up alone. */
async function bootstrapLoop(config: PeerConfig, libp2p: MeshLibp2p, swim: Swim, table: MemberTable, discovery: Discovery, log: Logger, signal: AbortSignal): Promise<void> {
  const retryMs = Math.max(200, config.membership.probeIntervalMs * 2);
  let joined = config.bootstrap.length === 0;
  while (!signal.aborted) {
    const alone = table.idsIn("alive", "suspect").length === 0;
    if (!joined || (alone && config.bootstrap.length)) {
      for (const addr of config.bootstrap) {
        try {
          const ma = multiaddr(addr);
          const id = ma.getComponents().find((c) => c.name === "p2p")?.value;
          if (!id) continue;
          await libp2p.dial(ma, { signal: AbortSignal.any([signal, AbortSignal.timeout(5000)]) });
          if (await swim.sync(id)) {
            if (!joined) log.info(`joined the mesh through ${id.slice(-6)}`);
            joined = true;
            void discovery.runOnce();
            break;
          }
        } catch (err) {
          log.debug(`bootstrap ${addr} failed: ${(err as Error).message}`);
        }
      }
    }
    await sleep(joined ? retryMs * 5 : retryMs, signal);
  }
}
