// SWIM-style failure detection: each interval this peer probes ONE member (round robin
// over a shuffled list), asks a few others to probe it indirectly when it does not answer,
// and spreads state changes by piggybacking them on these messages. Per-peer traffic is
// therefore bounded whatever the mesh size; a periodic full-state exchange with one
// member and an occasional probe of a dead member heal partitions and restarts.
import type { MembershipConfig } from "../config.ts";
import type { Rpc } from "../net/rpc.ts";
import type { Logger } from "../util/log.ts";
import { GossipQueue } from "./gossip-queue.ts";
import type { MemberRecord, MemberState, MemberTable } from "./member-table.ts";

interface PingParams {
  from: MemberRecord;
  /** How the caller sees the callee, so that a wrongly suspected callee can refute. */
  you?: { state: MemberState; inc: number };
  gossip: MemberRecord[];
}
interface PingReply {
  self: MemberRecord;
  you?: { state: MemberState; inc: number };
  gossip: MemberRecord[];
}

/** Callbacks the protocol needs from the peer. */
export interface SwimDeps {
  table: MemberTable;
  rpc: Rpc;
  config: MembershipConfig;
  log: Logger;
  /** Make a member's addresses dialable (merge into the peer store). */
  learnAddrs(id: string, addrs: string[]): Promise<void>;
  random?: () => number;
}

/** The running protocol. */
export interface Swim {
  start(): void;
  stop(): void;
  /** Exchange full member lists with a peer (used to join). Resolves true on success. */
  sync(peerId: string): Promise<boolean>;
  /** Ping a peer we just discovered (it joins our view if it answers). */
  contact(peerId: string): Promise<boolean>;
  /** Spread a change of our own record (e.g. draining) with the next messages. */
  announce(record: MemberRecord): void;
  /** Membership messages this peer has sent (requests and replies), for rate figures. */
  readonly messagesSent: number;
  /** Probes this peer started on its own schedule (one per interval, whatever the mesh size). */
  readonly probesStarted: number;
}

/** Create the protocol and register its RPC methods. */
export function createSwim(deps: SwimDeps): Swim {
  const { table, rpc, config, log } = deps;
  const random = deps.random ?? Math.random;
  const gossip = new GossipQueue();
  const misses = new Map<string, number>();
  const inFlight = new Set<string>();
  let order: string[] = [];
  let deadOrder: string[] = [];
  let tick = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  let sent = 0;
  let probesStarted = 0;

  const retransmitLimit = () => config.gossipMultiplier * Math.max(1, Math.ceil(Math.log2(table.others().length + 2)));
  const piggyback = () => gossip.take(config.maxGossipPerMessage, retransmitLimit());
  const spread = (rec: MemberRecord | undefined) => {
    if (rec) gossip.push(rec);
  };
  const viewOf = (id: string) => {
    const m = table.get(id);
    return m ? { state: m.state, inc: m.inc } : undefined;
  };

  /** Merge a record heard from the member itself (direct contact). */
  function heardFrom(rec: MemberRecord) {
    const before = table.get(rec.id);
    spread(table.apply(rec));
    table.touch(rec.id);
    misses.delete(rec.id);
    if (!before || before.addrs.join() !== rec.addrs.join()) void deps.learnAddrs(rec.id, rec.addrs).catch(() => {});
  }

  function absorb(records: MemberRecord[] | undefined) {
    for (const rec of records ?? []) {
      const before = table.get(rec.id);
      spread(table.apply(rec));
      const after = table.get(rec.id);
      if (after && rec.addrs.length && (!before || before.addrs.join() !== after.addrs.join())) {
        void deps.learnAddrs(rec.id, after.addrs).catch(() => {});
      }
    }
  }

  function hearYou(you: { state: MemberState; inc: number } | undefined) {
    if (you) spread(table.apply({ ...table.self, state: you.state, inc: you.inc }));
  }

  async function ping(target: string, timeoutMs: number): Promise<boolean> {
    try {
      sent++;
      const params: PingParams = { from: table.self, you: viewOf(target), gossip: piggyback() };
      const { result } = await rpc.call<PingReply>(target, "swim.ping", params, { timeoutMs });
      hearYou(result.you);
      heardFrom(result.self);
      absorb(result.gossip);
      return true;
    } catch {
      return false;
    }
  }

  async function probe(target: string): Promise<void> {
    if (inFlight.has(target)) return;
    inFlight.add(target);
    try {
      if (await ping(target, config.probeTimeoutMs)) return;
      const helpers = shuffle(table.idsIn("alive").filter((id) => id !== target), random).slice(0, config.indirectProbes);
      const results = await Promise.all(
        helpers.map(async (helper) => {
          try {
            sent++;
            const { result } = await rpc.call<{ ok: boolean }>(helper, "swim.pingReq", { target, gossip: piggyback() }, { timeoutMs: config.probeTimeoutMs * 2 });
            return result.ok;
          } catch {
            return false;
          }
        }),
      );
      if (results.some(Boolean)) {
        misses.delete(target);
        return;
      }
      const missed = (misses.get(target) ?? 0) + 1;
      misses.set(target, missed);
      if (missed >= config.suspectAfterMisses) {
        const rec = table.suspect(target);
        if (rec) log.info(`suspect ${target.slice(-6)} after ${missed} missed probe(s)`);
        spread(rec);
      }
    } finally {
      inFlight.delete(target);
    }
  }

  function nextFrom(list: string[], candidates: string[]): [string | undefined, string[]] {
    let rest = list.filter((id) => candidates.includes(id));
    if (rest.length === 0) rest = shuffle(candidates, random);
    return [rest[0], rest.slice(1)];
  }

  function onTick() {
    tick++;
    let target: string | undefined;
    [target, order] = nextFrom(order, table.idsIn("alive", "suspect"));
    if (target) {
      probesStarted++;
      void probe(target);
    }
    if (tick % config.deadProbeEveryProbes === 0) {
      [target, deadOrder] = nextFrom(deadOrder, table.idsIn("dead"));
      if (target) void ping(target, config.probeTimeoutMs);
    }
    if (tick % config.syncEveryProbes === 0) {
      const alive = table.idsIn("alive");
      const partner = alive[Math.floor(random() * alive.length)];
      if (partner) void sync(partner);
    }
    for (const id of table.expiredSuspects(config.deadAfterMs)) {
      log.info(`declare ${id.slice(-6)} dead`);
      spread(table.declareDead(id));
    }
  }

  async function sync(peerId: string): Promise<boolean> {
    try {
      sent++;
      const { result } = await rpc.call<{ members: MemberRecord[] }>(peerId, "swim.sync", { members: table.records() }, { timeoutMs: config.probeTimeoutMs * 4 });
      const [self, ...rest] = result.members;
      if (self) heardFrom(self);
      absorb(rest);
      return true;
    } catch (err) {
      log.debug(`sync with ${peerId.slice(-6)} failed: ${(err as Error).message}`);
      return false;
    }
  }

  rpc.register("swim.ping", async ({ params }) => {
    const p = params as PingParams;
    hearYou(p.you);
    heardFrom(p.from);
    absorb(p.gossip);
    sent++;
    const reply: PingReply = { self: table.self, you: viewOf(p.from.id), gossip: piggyback() };
    if (reply.you?.state === "alive") delete reply.you;
    return { result: reply };
  });
  rpc.register("swim.pingReq", async ({ params }) => {
    const p = params as { target: string; gossip: MemberRecord[] };
    absorb(p.gossip);
    sent++;
    return { result: { ok: await ping(p.target, config.probeTimeoutMs) } };
  });
  rpc.register("swim.sync", async ({ params }) => {
    const [self, ...rest] = (params as { members: MemberRecord[] }).members;
    if (self) heardFrom(self);
    absorb(rest);
    sent++;
    return { result: { members: table.records() } };
  });

  return {
    get messagesSent() {
      return sent;
    },
    get probesStarted() {
      return probesStarted;
    },
    start() {
      timer = setInterval(onTick, config.probeIntervalMs);
    },
    stop() {
      clearInterval(timer);
    },
    sync,
    contact: (peerId) => ping(peerId, config.probeTimeoutMs * 2),
    announce: (record) => gossip.push(record),
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
