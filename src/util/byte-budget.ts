// A budget of bytes shared by many requests (memory for upload buffers): a request
// reserves what it may hold at once before it starts and gives it back when done. When
// the budget is spent, requests wait in line for a bounded time and then give up, so the
// total stays under the budget however many clients connect. A waiter whose bytes fit goes
// ahead of bigger ones before it: a 1 KiB upload need not wait behind a line of large ones.
import { MeshError } from "../errors.ts";

/** A reservation that could not be made in time: load shed, so the client is told to slow down. */
export class BudgetTimeoutError extends MeshError {
  constructor(message: string) {
    super("SlowDown", message);
  }
}

interface Waiter {
  bytes: number;
  grant(): void;
}

/** A byte budget with a FIFO line of waiters. */
export class ByteBudget {
  private used = 0;
  private readonly line: Waiter[] = [];

  constructor(readonly limit: number) {}

  /** Bytes reserved now. */
  get inUse(): number {
    return this.used;
  }

  /** Requests waiting for bytes now. */
  get waiting(): number {
    return this.line.length;
  }

  /**
   * Reserve `bytes` (capped at the whole budget, so one big request can always run alone),
   * waiting up to `waitMs`; resolves to the function that gives them back (call it once).
   */
  async reserve(bytes: number, waitMs: number, signal?: AbortSignal): Promise<() => void> {
    const n = Math.min(bytes, this.limit);
    if (this.used + n <= this.limit) {
      this.used += n;
      return this.releaser(n);
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes: n,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const leave = (err: Error) => {
        const i = this.line.indexOf(waiter);
        if (i >= 0) this.line.splice(i, 1);
        signal?.removeEventListener("abort", onAbort);
        clearTimeout(timer);
        // The head of the line leaving may let the next one in.
        this.admit();
        reject(err);
      };
      const onAbort = () => leave(new BudgetTimeoutError("the request ended while waiting for memory"));
      const timer = setTimeout(() => leave(new BudgetTimeoutError(`no upload memory free within ${waitMs} ms`)), waitMs);
      signal?.addEventListener("abort", onAbort);
      this.line.push(waiter);
    });
    return this.releaser(n);
  }

  private releaser(n: number): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.used -= n;
      this.admit();
    };
  }

  /** Let in every waiter whose bytes fit, oldest first. */
  private admit(): void {
    for (let i = 0; i < this.line.length && this.used < this.limit; ) {
      const w = this.line[i];
      if (this.used + w.bytes > this.limit) {
        i++;
        continue;
      }
      this.line.splice(i, 1);
      this.used += w.bytes;
      w.grant();
    }
  }
}
