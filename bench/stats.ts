// Small helpers shared by the benchmark modules: percentiles, rates, a worker pool.

/** The q-quantile (0..1) of `xs` by nearest rank; `xs` need not be sorted. */
export function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** Decimal megabytes per second. */
export const mbps = (bytes: number, secs: number) => bytes / 1e6 / secs;

/** Run `fn(i)` for i in [from, to) with at most `inflight` calls running at once. */
export async function pool(from: number, to: number, inflight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(inflight, to - from)) }, async () => {
      while (next < to) await fn(next++);
    }),
  );
}

/** Progress lines go to stderr so stdout holds only the results. */
export const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** A target: at least (">=") or under ("<") `value`; `unit` follows the value in the verdict. */
export interface Target {
  op: ">=" | "<";
  value: number;
  unit: string;
}

/** A row of the bench's table. */
export interface Row {
  figure: string;
  value: string;
  limit: string;
  ratio: string;
  target: string;
}

/** "met" or "missed by X%" for each [value, target] pair, joined. */
export function judge(checks: Array<[number, Target]>): string {
  const missed = checks
    .map(([v, t]) => {
      const ok = t.op === ">=" ? v >= t.value : v < t.value;
      if (ok) return null;
      const by = t.op === ">=" ? (t.value - v) / t.value : (v - t.value) / t.value;
      return `missed ${t.op === ">=" ? "≥" : "<"}${t.value.toLocaleString("en")}${t.unit} by ${(100 * by).toFixed(0)}%`;
    })
    .filter(Boolean);
  return missed.length === 0 ? `met (${checks.map(([, t]) => `${t.op === ">=" ? "≥" : "<"}${t.value.toLocaleString("en")}${t.unit}`).join(", ")})` : missed.join("; ");
}
