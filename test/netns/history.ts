// Writers that record a history of every write (start, end, value, outcome), and the
// check of final reads against that history, in the manner of Jepsen's register checks:
// what a key reads after the dust settles must be explained by the history.
import { objectPath } from "../harness/http.ts";
import { mulberry32 } from "../harness/random.ts";
import { req } from "./peers.ts";

/** One write as the client saw it. `status` is 0 when no answer came (timeout, reset). */
export interface WriteOp {
  key: string;
  /** The peer (base URL) the write went through. */
  via: string;
  value: string;
  start: number;
  end: number;
  status: number;
  errorCode?: string;
}

/** Acknowledged: the peer said 2xx. Everything else may or may not have taken effect. */
export function acked(op: WriteOp): boolean {
  return op.status >= 200 && op.status < 300;
}

/** What a final read of a key saw: a body, or 404, or something else (status). */
export interface FinalRead {
  key: string;
  via: string;
  status: number;
  value?: string;
}

export interface Writer {
  name: string;
  ops: WriteOp[];
  /** Ask the writer to stop; resolves once every loop has finished its last request. */
  stop(): Promise<void>;
}

/**
 * Start `loops` concurrent loops that PUT values to `keys` (picked at random from a
 * seeded generator, so the same key may have writes in flight at once) through `bases`
 * in turn, each request bounded by `timeoutMs`. Values are unique: `<key>@<writer>#<n>`.
 */
export function startWriter(opts: { name: string; bucket: string; keys: string[]; bases: () => string[]; loops: number; seed: number; timeoutMs: number; pauseMs?: number }): Writer {
  const ops: WriteOp[] = [];
  const rand = mulberry32(opts.seed);
  let n = 0;
  let stopping = false;
  const loop = async (l: number) => {
    for (let turn = 0; !stopping; turn++) {
      const key = opts.keys[Math.floor(rand() * opts.keys.length)];
      const bases = opts.bases();
      const base = bases[(l + turn) % bases.length];
      const op: WriteOp = { key, via: base, value: `${key}@${opts.name}#${n++}`, start: performance.now(), end: 0, status: 0 };
      try {
        const r = await req(base, "PUT", objectPath(opts.bucket, key), { body: op.value }, opts.timeoutMs);
        op.status = r.status;
        if (r.status >= 300) op.errorCode = errorCodeOf(r.body);
      } catch (err) {
        op.errorCode = (err as Error).message.slice(0, 120);
      }
      op.end = performance.now();
      ops.push(op);
      if (opts.pauseMs) await Bun.sleep(opts.pauseMs);
    }
  };
  const running = Promise.all(Array.from({ length: opts.loops }, (_, l) => loop(l)));
  return {
    name: opts.name,
    ops,
    stop: async () => {
      stopping = true;
      await running;
    },
  };
}

function errorCodeOf(body: Uint8Array): string {
  try {
    return JSON.parse(new TextDecoder().decode(body))?.error?.code ?? "?";
  } catch {
    return "not JSON";
  }
}

/**
 * The values a final read of `key` may return, given every write to it:
 * - the last acknowledged write (the one that ended last), and any write that overlapped it
 *   (a write that got no answer counts as still running);
 * - any write that was not acknowledged and started after the last acknowledged one started
 *   (it may or may not have taken effect);
 * - with no acknowledged write at all: nothing (404) or any unacknowledged write.
 * Returns the allowed values and whether 404 is allowed.
 */
export function allowedFinal(ops: WriteOp[]): { values: Set<string>; notFoundOk: boolean } {
  const oks = ops.filter(acked);
  if (oks.length === 0) return { values: new Set(ops.map((o) => o.value)), notFoundOk: true };
  const last = oks.reduce((a, b) => (b.end > a.end ? b : a));
  const values = new Set<string>([last.value]);
  for (const o of ops) {
    // A write that got no answer may take effect at any later time: its end is open.
    const end = o.status === 0 ? Infinity : o.end;
    const overlaps = o.start < last.end && end > last.start;
    if (overlaps || (!acked(o) && o.start > last.start)) values.add(o.value);
  }
  return { values, notFoundOk: false };
}

/** Check final reads against the history; returns one line per read that the history cannot explain. */
export function checkFinalReads(ops: WriteOp[], reads: FinalRead[]): string[] {
  const byKey = new Map<string, WriteOp[]>();
  for (const o of ops) byKey.set(o.key, [...(byKey.get(o.key) ?? []), o]);
  const bad: string[] = [];
  for (const r of reads) {
    const history = byKey.get(r.key) ?? [];
    const { values, notFoundOk } = allowedFinal(history);
    const ok = r.status === 200 ? values.has(r.value!) : r.status === 404 && notFoundOk;
    if (!ok) {
      const lastAck = history.filter(acked).sort((a, b) => b.end - a.end)[0];
      bad.push(`${r.key} via ${r.via}: got ${r.status === 200 ? JSON.stringify(r.value) : `status ${r.status}`}; last acknowledged ${lastAck ? JSON.stringify(lastAck.value) : "none"}; allowed ${[...values].map((v) => JSON.stringify(v)).join(", ")}${notFoundOk ? " or 404" : ""}`);
    }
  }
  return bad;
}

/** Read `keys` through every base; bodies as text. */
export async function readAll(bucket: string, keys: string[], bases: string[]): Promise<FinalRead[]> {
  const reads: FinalRead[] = [];
  for (const base of bases) {
    const got = await Promise.all(
      keys.map(async (key) => {
        try {
          const r = await req(base, "GET", objectPath(bucket, key), {}, 10_000);
          return { key, via: base, status: r.status, value: r.status === 200 ? new TextDecoder().decode(r.body) : undefined };
        } catch {
          return { key, via: base, status: 0 };
        }
      }),
    );
    reads.push(...got);
  }
  return reads;
}

/**
 * Counts for the log line: acknowledged and failed writes, and failures by kind. With a
 * window [from, to] (performance.now() times), only the writes that ran wholly inside it.
 */
export function summarize(all: WriteOp[], window?: { from: number; to: number }): { acked: number; failed: number; failures: Record<string, number> } {
  const ops = window ? all.filter((o) => o.start >= window.from && o.end <= window.to) : all;
  const failures: Record<string, number> = {};
  for (const o of ops) {
    if (acked(o)) continue;
    const kind = o.status ? `${o.status} ${o.errorCode ?? ""}`.trim() : "no answer";
    failures[kind] = (failures[kind] ?? 0) + 1;
  }
  const a = ops.filter(acked).length;
  return { acked: a, failed: ops.length - a, failures };
}
