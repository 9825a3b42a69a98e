// The components bag of one peer: every part is built here, with what it depends on, and
// added to the peer's Lifecycle in start order (src/util/lifecycle.ts). Building opens
// only what the other parts need to exist (identity, libp2p, the roster, the stores);
// serving begins when the Lifecycle starts the parts:
//   rpc -> index, chunks, search (its RPC methods and indexer), caches (their RPC methods) -> admin key -> HTTP servers (then the advertised URL)
//   -> status -> metrics -> swim -> repair -> multipart expiry -> bucket lifecycle -> event retention -> webhook delivery -> discovery -> joiner
// and they stop in reverse. A new part is built here and added where its dependencies
// have started before it.
import { peerIdFromString } from "@libp2p/peer-id";
import { multiaddr } from "@multiformats/multiaddr";
import path from "node:path";
import { createNativeApi, headAsGet } from "../api/native.ts";
import { ClientLimits } from "../api/client-limits.ts";
import { createS3Handler } from "../api/s3/handler.ts";
import { nativeErrors } from "../api/errors.ts";
import { s3Errors } from "../api/s3/errors.ts";
import { createStatusReporter, peerView, type StatusReporter } from "../api/status.ts";
import { createAccessKeys } from "../auth/access-keys.ts";
import { bearerAuth } from "../auth/guard.ts";
import { createSecretSealer, sealClearRows } from "../auth/sealed-secret.ts";
import { NotFoundError } from "../errors.ts";
import { ADMIN_KEY_FILE, lifecycleConfig, type PeerConfig } from "../config.ts";
import { createEventFeed } from "../events/feed.ts";
import { createDiscovery } from "../membership/discovery.ts";
import { MemberTable, type MemberState } from "../membership/member-table.ts";
import { Roster } from "../membership/roster.ts";
import { createSwim, type Swim } from "../membership/swim.ts";
import { createIndexClient } from "../metadata/index-client.ts";
import { createConsensus } from "../metadata/consensus.ts";
import { createLeaseTable } from "../cache/manifest-leases.ts";
import { createManifestCache, type ManifestCache } from "../cache/manifest-cache.ts";
import { createLogGate } from "../changes/gate.ts";
import { createChangeLog } from "../changes/log.ts";
import { createRetention } from "../changes/retention.ts";
import { createEventStreams } from "../changes/stream.ts";
import { createDelivery } from "../changes/delivery.ts";
import { createNotifications } from "../changes/webhooks.ts";
import { deletesAreFinal, isEventRow, MESH_WIDE_SHARDS } from "../metadata/keys.ts";
import { createSharedCaches } from "../metadata/shared-cache.ts";
import { reachableAddrs } from "../net/addresses.ts";
import { loadOrCreateIdentity, startLibp2p, stopLibp2p, type MeshLibp2p } from "../net/libp2p.ts";
import { createLinkFilter, type LinkFilter } from "../net/link-filter.ts";
import { resolveMeshKey } from "../net/mesh-key.ts";
import { createRpc, type Rpc } from "../net/rpc.ts";
import { createChunkClient } from "../objects/chunk-client.ts";
import { openChunkCache } from "../cache/chunk-cache.ts";
import { createMultipart } from "../objects/multipart.ts";
import { createObjectService } from "../objects/object-service.ts";
import { createSseKeyring } from "../objects/sse-seal.ts";
import { createPlacement, type Placement } from "../placement/placement.ts";
import { createMultipartExpiry, expiryIntervalMs, type MultipartExpiryStatus } from "../repair/multipart-expiry.ts";
import { copiesOf } from "../placement/quorum-rule.ts";
import { createRepairService, type RepairService } from "../repair/repair-service.ts";
import { createWorker } from "../repair/worker.ts";
import { createLifecycleJob } from "../lifecycle/expiry.ts";
import { openChunkStore } from "../store/chunk-store.ts";
import { openIndexStore } from "../store/index-store.ts";
import { createHlc, decodeTimestamp, encodeTimestamp } from "../util/hlc.ts";
import type { Lifecycle } from "../util/lifecycle.ts";
import { createLogger, type Logger } from "../util/log.ts";
import { createMetrics } from "../metrics/registry.ts";
import pkg from "../../package.json" with { type: "json" };
import { makePrivateDir } from "../util/private-dir.ts";
import { createAdminKeyPart, readAdminKeyFile, type AdminKeyPart } from "./admin-key.ts";
import { createJoiner } from "./joiner.ts";
import { createMaintenance, type Maintenance } from "./maintenance.ts";
import { createSearchIndexer } from "../search/indexer.ts";
import { createSearchService, type SearchService } from "../search/search-service.ts";
import { createApiServers, type ApiServers } from "./servers.ts";
import { indexRows } from "../uploads/rows.ts";
import { createUploadRecords } from "../uploads/service.ts";
import { createRemotes } from "../remotes/registry.ts";
import { createOrigins } from "../remotes/origin-config.ts";
import { createPullThrough } from "../remotes/pull-through.ts";
import { createWriteThrough, withQueueStatus } from "../remotes/write-through.ts";
import { createOriginSync } from "../remotes/origin-sync.ts";
import { probeRemote } from "../remotes/remote-probe.ts";

/** The parts of one peer that the Peer object and its test hooks read. */
export interface Components {
  config: PeerConfig;
  peerId: string;
  log: Logger;
  libp2p: MeshLibp2p;
  /** Peers whose links are cut (test partitions). */
  links: LinkFilter;
  rpc: Rpc;
  table: MemberTable;
  placement: Placement;
  swim: Swim;
  repair: RepairService;
  servers: ApiServers;
  status: StatusReporter;
  maintenance: Maintenance;
  adminKey: AdminKeyPart;
  search: SearchService;
  /** The mesh key file this start created for a new mesh, if any. */
  createdMeshKeyFile?: string;
}

/** File in the data folder listing every member this peer has known (src/membership/roster.ts). */
const ROSTER_FILE = "members.json";

/** The peer id at the end of a bootstrap multiaddr (config validation made sure there is one). */
function bootstrapPeerId(addr: string): string {
  return multiaddr(addr).getComponents().find((c) => c.name === "p2p")?.value ?? "";
}

/**
 * Build every part of a peer into `lifecycle`, in start order. `signal` is the peer's:
 * aborted at stop, it ends every loop. If building fails, what was opened is in
 * `lifecycle` already, for the caller to stop.
 */
export async function buildComponents(config: PeerConfig, lifecycle: Lifecycle, signal: AbortSignal): Promise<Components> {
  // Identity, mesh key, admin key, index and objects: nobody but the owner may enter.
  const tightened = await makePrivateDir(config.dataDir);
  const privateKey = await loadOrCreateIdentity(config.dataDir);
  const meshKey = await resolveMeshKey(config.dataDir, config.meshKeyFile, config.bootstrap.length > 0);
  // A damaged admin-key.json is reported now, not later by `keys list`.
  await readAdminKeyFile(path.join(config.dataDir, ADMIN_KEY_FILE));
  const links = createLinkFilter();
  const libp2p = await startLibp2p({ privateKey, listen: config.p2pListen, announce: config.p2pAnnounce, meshKey: meshKey.key.psk, filter: links });
  lifecycle.opened("libp2p", () => stopLibp2p(libp2p));
  const peerId = libp2p.peerId.toString();
  const log = createLogger(config.logLabel ?? peerId.slice(-6), config.logSink, config.logLevel);
  if (tightened) log.warn(`the data folder ${config.dataDir} was open to other users: ${tightened} files and folders in it are now private to this user`);
  if (!config.auth) log.warn("AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach the HTTP and S3 ports can read, write and delete everything");
  const multiaddrs = () => libp2p.getMultiaddrs().map(String);

  // Membership: the table, and every member ever known on disk (quorums count them even while unreachable).
  // Incarnation starts at the boot time so a restarted peer outranks its old "dead" record.
  const table = new MemberTable({ id: peerId, addrs: multiaddrs(), state: "alive", inc: Date.now() });
  // Shown at the default level: an operator follows the mesh in these lines.
  // (This peer's own changes, such as a drain, are logged by the part that makes them.)
  table.onChange((m, prev) => {
    if (m.id !== peerId) log.info(`member ${m.id.slice(-6)}: ${prev ?? "new"} -> ${m.state}${prev === undefined ? " (joined)" : m.state === "alive" ? " (alive again)" : ""}`);
  });
  // Recent cluster events for /cluster/events and the dashboard (src/events/feed.ts).
  const events = createEventFeed(peerId);
  table.onChange((m, prev) => events.member(m, prev));
  const roster = await Roster.open(path.join(config.dataDir, ROSTER_FILE), peerId, config.bootstrap.map(bootstrapPeerId));
  lifecycle.opened("roster", () => roster.close());
  for (const rec of roster.removedRecords()) table.apply(rec);
  table.onRecord((rec) => roster.note(rec));
  const livePeers = () => [peerId, ...table.idsIn("alive")];

  // Storage: chunk files and the index shards this peer replicates.
  const chunkStore = await openChunkStore({ dir: path.join(config.dataDir, "chunks") });
  // The cache tier (src/cache/chunk-cache.ts): chunk bytes in memory and, optionally, under <data>/cache.
  // --cache-memory is split: an eighth for manifests under lease (src/cache/manifest-cache.ts), the rest for chunks.
  const manifestCacheBytes = Math.floor(config.cacheMemoryBytes / 8);
  const chunkCache = await openChunkCache({ memoryBytes: config.cacheMemoryBytes - manifestCacheBytes, diskBytes: config.cacheDiskBytes, dir: path.join(config.dataDir, "cache"), log: log.child("cache") });
  lifecycle.opened("chunk cache", () => chunkCache.close());
  const indexStore = await openIndexStore(path.join(config.dataDir, "index"), { deletesAreFinal, tallied: isEventRow });
  lifecycle.opened("index store", () => indexStore.close());
  // Search rows are derived beside the manifests from the start: before the index serves anything.
  const indexer = createSearchIndexer({ store: indexStore, log: log.child("search"), perSecond: config.searchBackfillPerSecond });
  await indexer.load();
  // Access-key secrets enter the index sealed with a key derived from the mesh key.
  const sealer = createSecretSealer(meshKey.key.psk);
  const resealed = await sealClearRows(indexStore, sealer);
  if (resealed) log.info(`sealed ${resealed} access key secret(s) an earlier version stored in clear`);

  const hlc = createHlc(peerId);
  const placement = createPlacement(table, config.rf, config.repairDelayMs, () => (table.self.draining ? roster.memberIds() : [...roster.memberIds(), peerId]), MESH_WIDE_SHARDS);
  const isExpiredTombstone = (ts: string) => Date.now() - decodeTimestamp(ts).wall > config.repair.tombstoneTtlMs;
  // The event log's admission gate (src/changes/gate.ts): what keeps readers' cursors gap-free.
  const gate = createLogGate(config.events.settleMs);
  // Events past the retention age or beyond the per-shard count leave the log (src/changes/retention.ts); anti-entropy asks it too.
  const retention = createRetention({ store: indexStore, retentionMs: config.events.retentionMs, maxPerShard: config.events.maxPerShard, log: log.child("event-retention") });

  // ---- Parts, in start order ----
  const rpc = createRpc(libp2p, links, log.child("rpc"), signal, config.rpcLimits);
  lifecycle.add("rpc", rpc);
  // Manifests under read leases: this peer's own cache of them, and the leases it grants as a replica.
  let manifests: ManifestCache | undefined;
  const leases = createLeaseTable({ self: peerId, rpc, dir: config.dataDir, dropLocal: (shard, row, ts) => manifests?.drop(shard, row, ts) ?? false, log: log.child("leases") });
  lifecycle.add("leases", leases);
  const index = createIndexClient({
    self: peerId,
    store: indexStore,
    rpc,
    placement,
    log: log.child("index"),
    isExpiredTombstone,
    livePeers,
    gate,
    leases,
    expired: (shard, row, entry) => retention.expired(shard, row, entry),
    observe: (ts) => {
      try {
        hlc.observe(decodeTimestamp(ts));
      } catch (err) {
        log.warn(`ignoring a timestamp from the future: ${(err as Error).message}`);
      }
    },
  });
  lifecycle.add("index", index);
  // Conditional writes (S3 If-Match / If-None-Match): a consensus round among a key's voters (src/metadata/consensus.ts).
  const consensus = createConsensus({ self: peerId, store: indexStore, rpc, placement, hlc, gate, leases, dir: config.dataDir, observe: (ts) => hlc.observe(decodeTimestamp(ts)) });
  lifecycle.add("consensus", consensus);
  manifests = createManifestCache({ readLeased: (shard, row, opts) => index.readLeased(shard, row, opts), voters: (shard) => placement.shardVoters(shard), rpc, maxBytes: manifestCacheBytes });
  lifecycle.add("manifest cache", manifests);
  const changes = createChangeLog({ self: peerId, store: indexStore, gate, rpc, placement, indexShards: config.indexShards, settleMs: config.events.settleMs });
  lifecycle.add("change log", changes);
  const chunks = createChunkClient({ self: peerId, store: chunkStore, rpc, placement, log: log.child("chunks"), isAlive: (id) => id === peerId || table.get(id)?.state === "alive", cache: chunkCache });
  lifecycle.add("chunks", chunks);
  // Objects and keys define their caches here; the caches' forget method is served once all are.
  const caches = createSharedCaches({ self: peerId, rpc, livePeers });
  // One set of client limits for both APIs of this peer.
  const limits = new ClientLimits(config.limits);
  // Live event streams (SSE, ListenBucketNotification): counted by their own cap, not as requests in flight.
  const streams = createEventStreams({
    changes,
    maxStreams: config.events.maxStreams,
    pollMs: config.events.streamPollMs,
    detach: (request) => limits.detach(request),
    log: log.child("events"),
  });
  const search = createSearchService({
    self: peerId,
    index,
    store: indexStore,
    placement,
    rpc,
    indexer,
    caches,
    indexShards: config.indexShards,
    now: () => encodeTimestamp(hlc.now()),
    livePeers,
    requireBucket: (bucket, opts) => objects.requireBucket(bucket, opts),
  });
  lifecycle.add("search", { start: () => (search.start(), indexer.start()), stop: async () => (search.stop(), await indexer.stop()) });
  const objects = createObjectService({
    metadata: search.rules,
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
    caches,
    manifests,
    consensus,
    // SSE-S3 data keys are wrapped with a key derived from the mesh key (src/objects/sse-seal.ts).
    sse: createSseKeyring(meshKey.key.psk),
  });
  // A Complete's record answers repeats for the multipart expiry age, and the expiry worker removes it then.
  const multipart = createMultipart({ self: peerId, objects, index, placement, hlc, indexShards: config.indexShards, completedKeepMs: config.repair.multipartExpiryMs });
  const keys = createAccessKeys({ self: peerId, index, placement, hlc, caches, sealer });
  // Webhooks (src/changes/delivery.ts): every peer delivers the shards it is first live replica of; started after the repair worker.
  const stamp = () => encodeTimestamp(hlc.now());
  const delivery = createDelivery({
    self: peerId,
    store: indexStore,
    index,
    changes,
    placement,
    isAlive: (id) => id === peerId || table.get(id)?.state === "alive",
    sealer,
    stamp,
    config: config.events,
    log: log.child("webhooks"),
    signal,
    random: config.random,
  });
  const notifications = createNotifications({ index, changes, sealer, stamp, requireBucket: (bucket, opts) => objects.requireBucket(bucket, opts), changed: () => delivery.refresh() });
  // Upload progress records, replicated in the uploads shard; started with the servers, swept by a worker.
  const uploads = createUploadRecords({
    rows: indexRows({ index, placement, self: peerId }, hlc),
    log: log.child("uploads"),
    config: config.uploads,
    signal,
    uploadOpen: (bucket, key, uploadId) => multipart.requireUpload(bucket, key, uploadId).then(
      () => true,
      (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
    ),
  });
  // Remote origins (src/remotes/): the registry, bucket origins, and pull-through reads (their RPC method served from here on).
  const remotes = createRemotes({ index, listing: { index, placement, self: peerId }, sealer, caches, stamp });
  const origins = createOrigins({
    index,
    caches,
    stamp,
    requireBucket: (bucket, opts) => objects.requireBucket(bucket, opts),
    remoteExists: (name, opts) => remotes.exists(name, opts),
    remoteWritable: (name, opts) => remotes.backendFor(name, opts).then((b) => b.capabilities.write),
    changed: () => writeThrough.refresh(),
  });
  // Write-through (src/remotes/write-through.ts): each peer applies the change events of the shards it is first live replica of.
  const writeThrough = createWriteThrough({
    self: peerId,
    store: indexStore,
    index,
    changes,
    placement,
    objects,
    backendFor: (name) => remotes.backendFor(name),
    isAlive: (id) => id === peerId || table.get(id)?.state === "alive",
    stamp,
    config: config.events,
    log: log.child("write-through"),
    signal,
    random: config.random,
  });
  const pull = createPullThrough({
    self: peerId,
    objects,
    origins,
    remotes,
    placement,
    isAlive: (id) => id === peerId || table.get(id)?.state === "alive",
    indexShards: config.indexShards,
    chunkSize: config.chunkSize,
    rpc,
    log: log.child("origins"),
    signal,
  });
  lifecycle.add("pull-through", pull);
  // Origin syncs: a bucket's remote imported into its index (metadata only); interrupted ones resumed.
  const originSync = createOriginSync({
    self: peerId,
    index,
    listing: { index, placement, self: peerId },
    objects,
    origins,
    remotes,
    livePeers,
    stamp,
    log: log.child("origin-sync"),
    signal,
  });
  lifecycle.add("origin sync", originSync);
  const probe = async (name: string, reqSignal?: AbortSignal) => probeRemote(await remotes.backendFor(name, { signal: reqSignal }), reqSignal);
  lifecycle.add("caches", caches);
  const adminKey = createAdminKeyPart(config, keys, log, signal);
  lifecycle.add("admin key", adminKey);

  const swim = createSwim({
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
    onRepair: (event, detail) => events.add(event === "started" ? "repair.started" : "repair.finished", detail, peerId),
  });
  // A member changing state may change the ring: check placement soon rather than at the next tick.
  table.onChange(() => repair.wake());
  // Incomplete multipart uploads past their age are aborted (src/repair/multipart-expiry.ts).
  const expiryAgeMs = config.repair.multipartExpiryMs;
  const expiry = expiryAgeMs > 0 ? createMultipartExpiry({ self: peerId, indexStore, placement, expire: (...a) => multipart.expire(...a), forgetCompleted: (...a) => multipart.forgetCompleted(...a), recordEnd: (token, uploadId, error) => uploads.endMultipart(token, uploadId, { error }), ageMs: expiryAgeMs, log: log.child("multipart-expiry") }) : undefined;
  const expiryWorker = expiry && createWorker("multipart-expiry", expiry, { intervalMs: expiryIntervalMs(expiryAgeMs), log, signal, random: config.random });
  const expiryStatus = (): MultipartExpiryStatus =>
    expiry && expiryWorker ? { ...expiry.stats, ...expiryWorker.status() } : { ageMs: null, lastPassAtMs: 0, uploadsAborted: 0 };
  // Buckets' lifecycle rules, applied by the first live replica of each object shard (src/lifecycle/expiry.ts).
  const lifecycleSettings = lifecycleConfig(config);
  const lifecycleJob = createLifecycleJob({
    self: peerId,
    indexStore,
    placement,
    isAlive: (id) => id === peerId || table.get(id)?.state === "alive",
    objects,
    abortUpload: (...a) => multipart.expire(...a),
    config: lifecycleSettings,
    log: log.child("lifecycle"),
  });
  const lifecycleWorker = createWorker("lifecycle", lifecycleJob, { intervalMs: lifecycleSettings.intervalMs, log, signal, random: config.random });
  const retentionWorker = createWorker("event-retention", retention, { intervalMs: config.events.retentionIntervalMs, log, signal, random: config.random });
  const maintenance = createMaintenance({ table, roster, swim, repair, placement, rpc, events, log });
  const status = createStatusReporter({
    peerId,
    rf: config.rf,
    table,
    rpc,
    swim,
    chunkStore,
    chunks,
    repair,
    placement,
    meshKeyFingerprint: meshKey.key.fingerprint,
    limits,
    dataDir: config.dataDir,
    multipartExpiry: expiryStatus,
    eventRetention: () => ({ ...retention.stats, ...retentionWorker.status() }),
    lifecycle: () => ({ ...lifecycleJob.stats, ...lifecycleWorker.status() }),
    eventStreams: () => streams.status(),
    writeThrough: () => writeThrough.stats(),
    cache: () => ({ ...chunkCache.stats(), manifests: manifests?.stats() }),
  });

  const metrics = createMetrics({
    peerId,
    version: pkg.version,
    dataDir: config.dataDir,
    indexShards: config.indexShards,
    table,
    placement,
    chunkStore,
    chunks,
    repair,
    rpc,
    swim,
    limits,
    nativeRoutes: () => nativeApp.routes,
    accessLog: config.accessLog ? log.child("access") : undefined,
    multipartExpired: () => expiry?.stats.uploadsAborted ?? 0,
    eventsDropped: () => retention.stats.droppedForAge + retention.stats.droppedForCount,
    cache: () => ({ ...chunkCache.stats(), manifests: manifests?.stats() }),
  });

  // Each API's one error function: every error answer of that API, and the log line of each 5xx.
  const errors = { native: nativeErrors(log.child("http")), s3: s3Errors(log.child("s3")) };
  const nativeApp = createNativeApi(
    {
      peerId,
      peers: () => peerView(table),
      status: () => status.status(),
      drain: () => maintenance.drain(),
      cancelDrain: () => maintenance.cancelDrain(),
      drainMember: (id, cancel, signal) => maintenance.drainMember(id, cancel, signal),
      removeMember: (id) => maintenance.removeMember(id),
      events,
      metrics: { public: config.metricsPublic, contentType: metrics.contentType, render: () => metrics.render() },
    },
    objects,
    {
      authenticate: bearerAuth(keys, config.auth, limits),
      required: config.auth,
      owners: (bucket) => objects.bucketOwner(bucket),
      // Keys created and revoked through this peer's admin routes are events of its feed.
      keys: {
        list: () => keys.list(),
        create: async (spec) => {
          const created = await keys.create(spec);
          events.add("key.created", `access key ${created.accessKeyId} created${created.admin ? " (admin)" : ""}`);
          return created;
        },
        revoke: async (id) => {
          await keys.revoke(id);
          events.add("key.revoked", `access key ${id} revoked`);
        },
      },
    },
    errors.native,
    multipart,
    search,
    changes,
    notifications,
    uploads,
    { open: (req) => streams.open(req), pingMs: config.events.streamPingMs },
    { remotes, origins: withQueueStatus(origins, writeThrough), pull, sync: originSync, probe },
  );
  const s3Handler = createS3Handler({ objects, multipart, uploads, listen: { streams, changes }, pull, keys, authEnabled: config.auth, limiter: limits, errors: errors.s3 });
  const servers = createApiServers({
    config,
    limits,
    native: headAsGet(nativeApp),
    s3: s3Handler,
    errors,
    multiaddrs,
    log,
    observe: (api, request) => metrics.observe(api, request),
    // Streams never finish by themselves: a graceful stop ends them rather than wait out its grace.
    beforeStop: () => streams.close(),
  });
  lifecycle.add("http servers", servers);
  lifecycle.add("upload records", uploads);
  // Members learn this peer's native URL with its record, so it is known before SWIM starts.
  lifecycle.add("advertise http", { start: () => void table.refreshSelf({ http: servers.httpUrl }), stop() {} });
  lifecycle.add("status", status);
  lifecycle.add("metrics", metrics);
  lifecycle.add("swim", swim);
  lifecycle.add("repair", repair);
  if (expiryWorker) lifecycle.add("multipart expiry", { start: () => expiryWorker.start(), stop: () => expiryWorker.stop() });
  lifecycle.add("bucket lifecycle", { start: () => lifecycleWorker.start(), stop: () => lifecycleWorker.stop() });
  lifecycle.add("event retention", { start: () => retentionWorker.start(), stop: () => retentionWorker.stop() });
  lifecycle.add("webhook delivery", { start: () => delivery.start(), stop: () => delivery.stop() });
  lifecycle.add("write-through", { start: () => writeThrough.start(), stop: () => writeThrough.stop() });
  lifecycle.add("maintenance", maintenance);

  const discovery = createDiscovery({
    libp2p,
    table,
    meshName: config.meshName,
    intervalMs: config.membership.discoveryIntervalMs,
    log: log.child("discovery"),
    signal,
    contact: (id) => swim.contact(id),
  });
  lifecycle.add("discovery", discovery);
  lifecycle.add("joiner", createJoiner({ config, libp2p, swim, table, discovery, log, signal }));
  // Said once the peer has started (a start that fails says only why): fewer members than RF.
  lifecycle.add("copies warning", {
    start() {
      const { warning } = copiesOf(placement.quorum());
      if (warning) log.warn(warning);
    },
    stop() {},
  });

  return {
    config,
    peerId,
    log,
    libp2p,
    links,
    rpc,
    table,
    placement,
    swim,
    repair,
    servers,
    status,
    maintenance,
    adminKey,
    search,
    createdMeshKeyFile: meshKey.created ? meshKey.key.file : undefined,
  };
}
