// Token-bucket rate limiting for many callers at once (one bucket per access key or client
// address). Buckets live in a bounded LRU cache: a bucket untouched long enough to have
// refilled is the same as no bucket, so it expires then, and a flood of distinct ids
// evicts the least recently seen instead of growing memory.
import { boundedCache, type BoundedCache } from "./lru.ts";

/** A rate: `perSecond` tokens refill each second, up to `burst` saved. 0 turns the limit off. */
export interface Rate {
  perSecond: number;
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets tracked at most, per limiter (about 100 bytes each). */
export const MAX_BUCKETS = 50_000;

/** Rate limiters keyed by a caller's id. */
export class TokenBuckets {
  private readonly buckets: BoundedCache<string, Bucket>;

  constructor(
    readonly rate: Rate,
    private readonly now: () => number = Date.now,
    maxBuckets = MAX_BUCKETS,
  ) {
    // A bucket refills fully in burst/perSecond seconds: after that it may as well be forgotten.
    const refillMs = rate.perSecond > 0 ? Math.ceil((rate.burst / rate.perSecond) * 1000) + 1000 : undefined;
    this.buckets = boundedCache<string, Bucket>({ max: maxBuckets, ttlMs: refillMs }, now);
  }

  get enabled(): boolean {
    return this.rate.perSecond > 0;
  }

  private current(id: string): Bucket {
    const t = this.now();
    const b = this.buckets.get(id) ?? { tokens: this.rate.burst, at: t };
    b.tokens = Math.min(this.rate.burst, b.tokens + ((t - b.at) / 1000) * this.rate.perSecond);
    b.at = t;
    this.buckets.set(id, b);
    return b;
  }

  /** Take one token: 0 if taken, else the seconds until one is available (nothing taken). */
  take(id: string): number {
    if (!this.enabled) return 0;
    const b = this.current(id);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.rate.perSecond;
  }

  /** Take one token even if none is left (the bucket may go into debt down to -burst); for charging after the fact. */
  charge(id: string): void {
    if (!this.enabled) return;
    const b = this.current(id);
    b.tokens = Math.max(-this.rate.burst, b.tokens - 1);
  }

  /** Seconds until `id` has a whole token (0: it has one now). Takes nothing. */
  waitFor(id: string): number {
    if (!this.enabled) return 0;
    const b = this.current(id);
    return b.tokens >= 1 ? 0 : (1 - b.tokens) / this.rate.perSecond;
  }

  /** Buckets tracked now. */
  get size(): number {
    return this.buckets.size;
  }
}
