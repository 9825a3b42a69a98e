// The one lifecycle shape of a peer's long-lived parts (as js-libp2p's services and Helia's
// node have it): `start()` begins serving (registers RPC handlers, listens, starts loops),
// `stop()` undoes it. A Lifecycle starts its parts in order and stops the running ones in
// reverse, each with a bounded time, so one stuck part never keeps the peer up.

/** A long-lived part of a peer. */
export interface Startable {
  /** Begin serving. Parts opened while being built (stores, the libp2p node) have no start. */
  start?(): void | Promise<void>;
  /** Stop serving; `abrupt` (a kill): do not wait for work in progress. */
  stop(abrupt: boolean): void | Promise<void>;
}

interface Entry {
  name: string;
  part: Startable;
  running: boolean;
}

/** The parts of one peer, in start order. */
export class Lifecycle {
  private readonly parts: Entry[] = [];

  /** A resource already open (a store, the libp2p node): it stops with the rest, in reverse. */
  opened(name: string, stop: (abrupt: boolean) => void | Promise<void>): void {
    this.parts.push({ name, part: { stop }, running: true });
  }

  /** A part to start, after every part added before it. */
  add(name: string, part: Startable): void {
    this.parts.push({ name, part, running: false });
  }

  /** Start every part not yet running, in order; a failure leaves the earlier ones running (stopAll undoes them). */
  async startAll(): Promise<void> {
    for (const entry of this.parts) {
      if (entry.running) continue;
      await entry.part.start?.();
      entry.running = true;
    }
  }

  /** Stop the running parts in reverse order, each given at most `stepMs`; never throws. */
  async stopAll(abrupt: boolean, stepMs: number, onError?: (name: string, err: unknown) => void): Promise<void> {
    for (const entry of [...this.parts].reverse()) {
      if (!entry.running) continue;
      entry.running = false;
      try {
        const outcome = await withinMs(Promise.resolve().then(() => entry.part.stop(abrupt)), stepMs);
        if (outcome === "timeout") onError?.(entry.name, new Error(`did not stop within ${stepMs} ms`));
      } catch (err) {
        onError?.(entry.name, err);
      }
    }
  }

  /** Names of the running parts, in start order (for tests and logs). */
  running(): string[] {
    return this.parts.filter((p) => p.running).map((p) => p.name);
  }
}

/** `work`'s outcome, or "timeout" after `ms`; the timer is cleared either way, so it never holds the process. */
export async function withinMs<T>(work: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), ms)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
