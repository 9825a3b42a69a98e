// SWIM-style failure detection: each interval this peer probes ONE member (round robin
// over a shuffled list), asks a few others to probe it indirectly when it does not answer,
// and spreads state changes by piggybacking them on these messages. Per-peer traffic is
// therefore bounded whatever the mesh size; a periodic full-state exchange with one
// member and an occasional probe of a dead member heal partitions and restarts.
// Lifeguard (lifeguard.ts) stretches timeouts when this peer is the slow one, adapts them
// to each member's round trips, and shortens a suspicion as others confirm it. Every
// message rides the control lane, never queued behind chunk data.
import { Type, type Static } from "@sinclair/typebox";
import type { MembershipConfig } from "../config.ts";
import { MeshError } from "../errors.ts";
import { defineMethod, type CallOptions, type Rpc } from "../net/rpc.ts";
import { PeerIdSchema } from "../net/rpc-schema.ts";
import type { Logger } from "../util/log.ts";
import { GossipQueue } from "./gossip-queue.ts";
import { Awareness, RoundTrips, suspicionTimeout } from "./lifeguard.ts";
import { supersedes, type Member, type MemberRecord, type MemberState, type MemberTable } from "./member-table.ts";

// ---- Messages, checked on both sides: params by the RPC server, replies by the caller ----

/** Most members a full-state exchange carries, and most records one message gossips. */
const MAX_MEMBERS = 10_000;
const MAX_GOSSIP = 256;
/** Most addresses a member record lists. */
const MAX_ADDRS = 128;

/** Integers only: +1 on an incarnation must be exact (the table also drops ones too far ahead). */
const IncarnationSchema = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const StateSchema = Type.Union([Type.Literal("alive"), Type.Literal("suspect"), Type.Literal("dead"), Type.Literal("removed")]);
const MemberRecordSchema = Type.Object(
  {
    id: PeerIdSchema,
    addrs: Type.Array(Type.String({ maxLength: 256 }), { maxItems: MAX_ADDRS }),
    http: Type.Optional(Type.String({ maxLength: 512 })),
    state: StateSchema,
    inc: IncarnationSchema,
    draining: Type.Optional(Type.Boolean()),
    by: Type.Optional(PeerIdSchema),
  },
  // Records are stored and passed on as they came: nothing else may ride along.
  { additionalProperties: false },
);
/** How the caller sees the callee, so that a wrongly suspected callee can refute. */
const ViewSchema = Type.Object({ state: StateSchema, inc: IncarnationSchema });
const GossipSchema = Type.Array(MemberRecordSchema, { maxItems: MAX_GOSSIP });
const MembersSchema = Type.Array(MemberRecordSchema, { minItems: 1, maxItems: MAX_MEMBERS });

const PingParamsSchema = Type.Object({ from: MemberRecordSchema, you: Type.Optional(ViewSchema), gossip: GossipSchema });
const PingReplySchema = Type.Object({ self: MemberRecordSchema, you: Type.Optional(ViewSchema), gossip: GossipSchema });
const PingReqParamsSchema = Type.Object({ target: PeerIdSchema, timeoutMs: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 60_000 })), gossip: GossipSchema });
const PingReqReplySchema = Type.Object({ ok: Type.Boolean() });
/** A full-state exchange: the sender's own record first, then every other it knows. */
const SyncSchema = Type.Object({ members: MembersSchema });

type PingReply = Static<typeof PingReplySchema>;

/** A direct probe: the caller's record and gossip in, the callee's record and gossip back. */
const Ping = defineMethod("swim.ping", { params: PingParamsSchema, result: PingReplySchema });
/** An indirect probe: the callee pings `target` for the caller and says whether it answered. */
const PingReq = defineMethod("swim.pingReq", { params: PingReqParamsSchema, result: PingReqReplySchema });
/** A full-state exchange (joining, and now and then to heal partitions). */
const Sync = defineMethod("swim.sync", { params: SyncSchema, result: SyncSchema });

/** Callbacks the protocol needs from the peer. */
export interface SwimDeps {
  table: MemberTable;
  rpc: Rpc;
  config: MembershipConfig;
  log: Logger;
  /** Make a member's addresses dialable (merge into the peer store). */
  learnAddrs(id: string, addrs: string[]): Promise<void>;
  /** Drop the addresses learned for a would-be member that did not answer. */
  forgetAddrs?(id: string): Promise<void>;
  random?: () => number;
}

/** The running protocol. */
export interface Swim {
  /** Answer membership calls and start probing. */
  start(): void;
  /** Stop probing and answering. */
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
  /** This peer's Lifeguard health score (0 healthy, up to 8). */
  readonly healthScore: number;
}

/** How many independent confirmations shorten a suspicion all the way (memberlist uses 3). */
const EXPECTED_CONFIRMATIONS = 3;
/** An adaptive probe timeout never exceeds this many times the configured one. */
const TIMEOUT_CEILING_FACTOR = 4;
/** Hearsay checked by pinging its subject (see `needsOwnWord`): at most this many pings at once. */
const MAX_CHECKING = 16;
/** Subjects of hearsay remembered as recently checked, so repeated gossip costs one ping per probe interval. */
const MAX_CHECKED_REMEMBERED = 1024;

/** Create the protocol (it registers its RPC methods when started). */
export function createSwim(deps: SwimDeps): Swim {
  const { table, rpc, config, log } = deps;
  const random = deps.random ?? Math.random;
  const gossip = new GossipQueue();
  const misses = new Map<string, number>();
  const inFlight = new Set<string>();
  const awareness = new Awareness();
  const rtts = new RoundTrips();
  /** Who suspects each suspect member (at its incarnation): the first accuser starts it, the others confirm. */
  const suspicions = new Map<string, { inc: number; accusers: Set<string> }>();
  const control = (timeoutMs: number): CallOptions => ({ timeoutMs, lane: "control" });
  let order: string[] = [];
  let deadOrder: string[] = [];
  let tick = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let sent = 0;
  let probesStarted = 0;

  /** The probe timeout for `id`: its round trips, our own health, never below the configured floor. */
  const probeTimeout = (id: string) => awareness.scale(rtts.timeout(id, config.probeTimeoutMs, config.probeTimeoutMs * TIMEOUT_CEILING_FACTOR));
  const suspicionMinMs = Math.min(config.deadAfterMs, Math.max(config.deadAfterMs / 4, config.probeIntervalMs * 2));
  table.onChange((m) => {
    if (m.state !== "suspect") suspicions.delete(m.id);
    if (m.state === "alive") rtts.forget(m.id);
  });
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

  /**
   * Hearsay that would bring a member into our view (or back to life) is not taken on a
   * third party's word: any key holder can gossip, and a forged "alive" member would count
   * in quorums and be chosen for data while nobody can reach it, and a forged refutation
   * would keep a dead member alive for ever. Such a record only makes us ping the member
   * itself; its own answer (heardFrom) then decides. Suspicions and deaths of members we
   * know spread by gossip as usual, and so do changes of members we see alive.
   */
  function needsOwnWord(rec: MemberRecord, cur: Member | undefined): boolean {
    if (rec.id === table.self.id || rec.state === "removed") return false;
    if (!cur) return true;
    return rec.state === "alive" && cur.state !== "alive" && supersedes(rec, cur);
  }
  const checking = new Set<string>();
  const checkedAt = new Map<string, number>();
  /** Ping the subject of hearsay we will not take on trust (bounded in number and rate). */
  function check(rec: MemberRecord) {
    const now = table.now();
    const last = checkedAt.get(rec.id);
    if (checking.has(rec.id) || checking.size >= MAX_CHECKING || (last !== undefined && now - last < config.probeIntervalMs)) return;
    checkedAt.delete(rec.id);
    checkedAt.set(rec.id, now);
    if (checkedAt.size > MAX_CHECKED_REMEMBERED) checkedAt.delete(checkedAt.keys().next().value!);
    checking.add(rec.id);
    const known = table.get(rec.id) !== undefined;
    void (async () => {
      if (!known && rec.addrs.length) await deps.learnAddrs(rec.id, rec.addrs).catch(() => {});
      // A first contact may have to dial and handshake: allow the longest probe timeout.
      const answered = await ping(rec.id, awareness.scale(config.probeTimeoutMs * TIMEOUT_CEILING_FACTOR));
      if (!answered && !known && !table.get(rec.id)) await deps.forgetAddrs?.(rec.id).catch(() => {});
    })().finally(() => checking.delete(rec.id));
  }

  function absorb(records: MemberRecord[] | undefined) {
    for (const rec of records ?? []) {
      const before = table.get(rec.id);
      if (needsOwnWord(rec, before)) {
        check(rec);
        continue;
      }
      spread(table.apply(rec));
      const after = table.get(rec.id);
      if (rec.state === "suspect" && rec.by && after?.state === "suspect" && after.inc === rec.inc) accuse(rec.id, rec.by, rec.inc, rec);
      if (after && rec.addrs.length && (!before || before.addrs.join() !== after.addrs.join())) {
        void deps.learnAddrs(rec.id, after.addrs).catch(() => {});
      }
    }
  }

  /** Learn how the other side sees us; being suspected means we may be the slow one. */
  function hearYou(you: { state: MemberState; inc: number } | undefined) {
    if (!you) return;
    const refutation = table.apply({ ...table.self, state: you.state, inc: you.inc });
    if (refutation) awareness.apply(1);
    spread(refutation);
  }

  /**
   * Note that `by` suspects `id` at incarnation `inc`. The first accuser starts the
   * suspicion and does not count; each other one is an independent confirmation (as in
   * memberlist), passed on so that others shorten theirs too.
   */
  function accuse(id: string, by: string, inc: number, rec?: MemberRecord) {
    let s = suspicions.get(id);
    if (!s || s.inc !== inc) suspicions.set(id, (s = { inc, accusers: new Set() }));
    if (s.accusers.has(by) || s.accusers.size > EXPECTED_CONFIRMATIONS) return;
    s.accusers.add(by);
    if (rec && s.accusers.size > 1) gossip.push(rec);
  }

  async function ping(target: string, timeoutMs: number): Promise<boolean> {
    try {
      sent++;
      const startedAt = performance.now();
      const { result } = await rpc.call(target, Ping, { from: table.self, you: viewOf(target), gossip: piggyback() }, control(timeoutMs));
      if (result.self.id !== target) throw new Error("a ping answered for another member");
      rtts.observe(target, performance.now() - startedAt);
      // Any answer shows our own link works (an isolated peer must recover once healed).
      awareness.apply(-1);
      hearYou(result.you);
      if (result.self?.id === target) heardFrom(result.self);
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
      const timeoutMs = probeTimeout(target);
      if (await ping(target, timeoutMs)) return;
      const helpers = shuffle(table.idsIn("alive").filter((id) => id !== target), random).slice(0, config.indirectProbes);
      // A helper answers ok:false (a nack) when it could not reach the target either; one
      // that does not answer at all suggests the trouble is on our side.
      const results = await Promise.all(
        helpers.map(async (helper): Promise<"ack" | "nack" | "silent"> => {
          try {
            sent++;
            // The helper gets less time than we wait for it, so its nack arrives before we give up.
            const reply = await rpc.call(helper, PingReq, { target, timeoutMs, gossip: piggyback() }, control(timeoutMs * 2));
            return reply.result.ok ? "ack" : "nack";
          } catch {
            return "silent";
          }
        }),
      );
      if (results.includes("ack")) {
        misses.delete(target);
        return;
      }
      awareness.apply(results.includes("silent") ? 1 : 0);
      const missed = (misses.get(target) ?? 0) + 1;
      misses.set(target, missed);
      if (missed >= config.suspectAfterMisses) {
        if (table.suspect(target)) log.info(`suspect ${target.slice(-6)} after ${missed} missed probe(s) (timeout ${Math.round(timeoutMs)} ms, health ${awareness.score})`);
        // Our own failed probe of a suspect member, whoever suspected it first, is a confirmation others count.
        const m = table.record(target);
        if (m?.state === "suspect") {
          accuse(m.id, table.self.id, m.inc);
          spread({ ...m, by: table.self.id });
        }
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
      if (target) void ping(target, probeTimeout(target));
    }
    if (tick % config.syncEveryProbes === 0) {
      const alive = table.idsIn("alive");
      const partner = alive[Math.floor(random() * alive.length)];
      if (partner) void sync(partner);
    }
    for (const id of table.expiredSuspects(suspicionMinMs)) {
      const m = table.get(id)!;
      const confirmed = Math.max(0, (suspicions.get(id)?.accusers.size ?? 1) - 1);
      const expected = Math.min(EXPECTED_CONFIRMATIONS, Math.max(0, table.idsIn("alive", "suspect").length - 1));
      if (table.now() - m.stateSinceMs < suspicionTimeout(suspicionMinMs, config.deadAfterMs, expected, confirmed)) continue;
      log.info(`declare ${id.slice(-6)} dead (suspected by ${confirmed} other member(s) too)`);
      spread(table.declareDead(id));
    }
  }

  /** Run ticks on a timer that stretches with our health score. */
  function schedule() {
    if (!running) return;
    timer = setTimeout(() => {
      try {
        onTick();
      } finally {
        schedule();
      }
    }, awareness.scale(config.probeIntervalMs));
  }

  async function sync(peerId: string): Promise<boolean> {
    try {
      sent++;
      const reply = await rpc.call(peerId, Sync, { members: table.records() }, control(awareness.scale(config.probeTimeoutMs * 4)));
      const [self, ...rest] = reply.result.members;
      if (self.id !== peerId) throw new Error("a sync answered for another member");
      heardFrom(self);
      absorb(rest);
      return true;
    } catch (err) {
      log.debug(`sync with ${peerId.slice(-6)} failed: ${(err as Error).message}`);
      return false;
    }
  }

  /** A member speaks only for itself: the record it sends as its own must be the caller's. */
  const mustBeCaller = (rec: MemberRecord, from: string) => {
    if (rec.id !== from) throw new MeshError("InvalidParams", "a member's own record must be the caller's");
  };
  function registerMethods() {
    rpc.register(Ping, async ({ params: p, from }) => {
      mustBeCaller(p.from, from);
      hearYou(p.you);
      if (p.from?.id === from) heardFrom(p.from);
      absorb(p.gossip);
      sent++;
      const reply: PingReply = { self: table.self, you: viewOf(from), gossip: piggyback() };
      if (reply.you?.state === "alive") delete reply.you;
      return { result: reply };
    });
    rpc.register(PingReq, async ({ params: p }) => {
      absorb(p.gossip);
      sent++;
      const askerMs = p.timeoutMs ?? config.probeTimeoutMs;
      return { result: { ok: await ping(p.target, Math.min(probeTimeout(p.target), askerMs * 1.6)) } };
    });
    rpc.register(Sync, async ({ params, from }) => {
      const [self, ...rest] = params.members;
      mustBeCaller(self, from);
      heardFrom(self);
      absorb(rest);
      sent++;
      return { result: { members: table.records() } };
    });
  }

  return {
    get messagesSent() {
      return sent;
    },
    get probesStarted() {
      return probesStarted;
    },
    get healthScore() {
      return awareness.score;
    },
    start() {
      registerMethods();
      running = true;
      schedule();
    },
    stop() {
      running = false;
      clearTimeout(timer);
      for (const method of [Ping, PingReq, Sync]) rpc.unregister(method);
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
