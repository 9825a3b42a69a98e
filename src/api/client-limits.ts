// What a client may cost one peer: the cap on requests in flight, rate limits per access
// key and per client address, a stricter one on failed authentications, and the memory
// budget of upload buffers (src/util/byte-budget.ts, used by the object service). One
// instance per peer serves both its APIs; every refusal is counted for /cluster/status.
import type { LimitsConfig } from "../config.ts";
import { SlowDownError } from "../errors.ts";
import { BudgetTimeoutError, ByteBudget } from "../util/byte-budget.ts";
import { TokenBuckets } from "../util/token-buckets.ts";
import { pathOf } from "./request-target.ts";

/** Refusals since the peer started, by cause. */
export interface LimitCounts {
  /** Over the per-key or per-address rate. */
  rateLimited: number;
  /** Over `--max-inflight`. */
  inflightRejected: number;
  /** Request bodies abandoned by their client (RequestTimeout). */
  bodyTimeouts: number;
  /** Refused because the address failed to authenticate too often. */
  authFailuresLimited: number;
  /** Uploads that waited too long for upload memory. */
  uploadMemoryRejected: number;
}

/** What the auth code reports so that keys and failures are rate limited (guard.ts, s3/request.ts). */
export interface AuthLimiter {
  /** A request authenticated as `accessKeyId`: throws SlowDownError if the key is over its rate. */
  keyUsed(request: Request, accessKeyId: string): void;
  /** A request failed to authenticate. */
  authFailed(request: Request): void;
}

/** The rate-limit key of a client address: IPv4 as is, IPv6 by its /64 (one host usually has a whole /64). */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1];
  if (!ip.includes(":")) return ip;
  const [head, tail = ""] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = ip.includes("::") ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right] : left;
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":") + "::/64";
}

/** Is `ip` a loopback address (127.0.0.0/8 or ::1)? */
export function isLoopback(ip: string): boolean {
  return /^(::ffff:)?127\./i.test(ip) || ip === "::1";
}

/** Exempt from every limit: load balancers and the tests' readiness checks poll it. */
const EXEMPT_PATH = "/health";

const wholeSeconds = (s: number) => Math.max(1, Math.ceil(s));

/** The limits of one peer. */
export class ClientLimits implements AuthLimiter {
  readonly counts: LimitCounts = { rateLimited: 0, inflightRejected: 0, bodyTimeouts: 0, authFailuresLimited: 0, uploadMemoryRejected: 0 };
  /** Memory for upload buffers, shared by every upload through this peer. */
  readonly uploadMemory: ByteBudget;
  private inflight = 0;
  private readonly perKey: TokenBuckets;
  private readonly perIp: TokenBuckets;
  private readonly authFailures: TokenBuckets;
  /** The client address of each admitted request, for the auth code's reports. */
  private readonly clients = new WeakMap<Request, string>();
  /** The release of each admitted request's in-flight slot, for `detach`. */
  private readonly slots = new WeakMap<Request, () => void>();

  constructor(
    readonly config: LimitsConfig,
    now: () => number = Date.now,
  ) {
    this.perKey = new TokenBuckets(config.perKey, now);
    this.perIp = new TokenBuckets(config.perIp, now);
    this.authFailures = new TokenBuckets(config.authFailures, now);
    this.uploadMemory = new ByteBudget(config.uploadMemoryBytes);
  }

  /** The address limits apply to `ip` (undefined: exempt). */
  private limitedAddress(ip: string): string | undefined {
    return !this.config.limitLoopback && isLoopback(ip) ? undefined : addressKey(ip);
  }

  /**
   * A request arrived from `ip`: the refusal to send, or the function to call once its
   * answer is sent (or the client went away).
   */
  admit(request: Request, ip: string): SlowDownError | (() => void) {
    if (pathOf(request.url) === EXEMPT_PATH) return () => {};
    if (this.inflight >= this.config.maxInflight) {
      this.counts.inflightRejected++;
      // 1 to 3 s at random: refused together, clients should not all come back together.
      return new SlowDownError(`this peer is serving ${this.config.maxInflight} requests already (--max-inflight); retry shortly`, 1 + Math.floor(Math.random() * 3));
    }
    const address = this.limitedAddress(ip);
    if (address !== undefined) {
      const guessing = this.authFailures.waitFor(address);
      if (guessing > 0) {
        this.counts.authFailuresLimited++;
        return new SlowDownError("too many failed authentications from your address; retry later", wholeSeconds(guessing));
      }
      const wait = this.perIp.take(address);
      if (wait > 0) {
        this.counts.rateLimited++;
        return new SlowDownError(`too many requests from your address (over ${this.config.perIp.perSecond} per second)`, wholeSeconds(wait));
      }
    }
    this.clients.set(request, ip);
    this.inflight++;
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      this.inflight--;
    };
    this.slots.set(request, release);
    return release;
  }

  /**
   * `request` has become a long-lived stream (change events): it stops counting against
   * `--max-inflight` now rather than when it ends, hours later. Streams have their own cap
   * (events.maxStreams), so a few hundred listeners cannot lock every other client out.
   */
  detach(request: Request): void {
    this.slots.get(request)?.();
  }

  keyUsed(_request: Request, accessKeyId: string): void {
    const wait = this.perKey.take(accessKeyId);
    if (wait > 0) {
      this.counts.rateLimited++;
      throw new SlowDownError(`too many requests with access key ${accessKeyId} (over ${this.config.perKey.perSecond} per second)`, wholeSeconds(wait));
    }
  }

  authFailed(request: Request): void {
    const ip = this.clients.get(request);
    const address = ip === undefined ? undefined : this.limitedAddress(ip);
    if (address !== undefined) this.authFailures.charge(address);
  }

  /** Reserve upload memory, waiting in line up to `uploadMemoryWaitMs`; SlowDown if none frees up. */
  async reserveUpload(bytes: number): Promise<() => void> {
    try {
      return await this.uploadMemory.reserve(bytes, this.config.uploadMemoryWaitMs);
    } catch (err) {
      if (!(err instanceof BudgetTimeoutError)) throw err;
      this.counts.uploadMemoryRejected++;
      throw new SlowDownError(`this peer has ${Math.round(this.config.uploadMemoryBytes / 1048576)} MiB for upload buffers (--upload-memory) and all of it is in use; retry shortly`, 2);
    }
  }

  /** A request body timed out. */
  bodyTimedOut(): void {
    this.counts.bodyTimeouts++;
  }

  /** For /cluster/status. */
  status() {
    return {
      ...this.counts,
      inflight: this.inflight,
      maxInflight: this.config.maxInflight,
      uploadMemoryBytes: this.uploadMemory.inUse,
      uploadsWaitingForMemory: this.uploadMemory.waiting,
      // Rate-limit state held now, per limiter (each bounded by MAX_BUCKETS).
      tracked: { keys: this.perKey.size, addresses: this.perIp.size, failingAddresses: this.authFailures.size },
    };
  }
}
