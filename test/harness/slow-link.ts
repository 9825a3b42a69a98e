// A slow, lossy link in userspace: a TCP relay in front of a peer's p2p port that
// delays, jitters, rate-limits and stalls every byte in both directions, the way a WAN
// link shapes one TCP connection. This kernel has no netem, so cluster tests shape links
// here. Loss cannot drop bytes from a TCP stream, so a lost segment is modelled as TCP
// experiences it: the stream stalls for a retransmission timeout (head-of-line blocking).
// Each connection gets its own queue and rate, as each TCP connection has its own
// congestion window; randomness is seeded so a failing run replays.
import net from "node:net";
import { mulberry32 } from "./random.ts";

/** The shape of a link, per direction. */
export interface LinkShape {
  /** One-way delay (the round trip is twice this). */
  delayMs: number;
  /** Each delivery is delayed by up to this much more (never reordered). */
  jitterMs: number;
  /** Chance that a 1460-byte segment is lost, costing a retransmission stall. */
  lossRate: number;
  /** Rate of one connection in one direction. */
  bytesPerSecond: number;
}

/** A running relay. */
export interface SlowLink {
  readonly port: number;
  /** Stop accepting and drop every relayed connection. */
  close(): Promise<void>;
}

const SEGMENT = 1460;
/** Linux's minimum retransmission timeout. */
const MIN_RTO_MS = 200;
/** Bytes a direction may hold before it stops reading its source (TCP's window, and bounded memory). */
const MAX_QUEUED = 8 * 1024 * 1024;

/** Relay one direction, shaped. */
function shapedPipe(src: net.Socket, dst: net.Socket, shape: LinkShape, random: () => number): void {
  const queue: Array<{ at: number; bytes: Buffer }> = [];
  let queued = 0;
  let wireFreeAt = 0;
  let lastAt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const deliver = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length && queue[0].at <= now) {
      const { bytes } = queue.shift()!;
      queued -= bytes.byteLength;
      if (!dst.destroyed) dst.write(bytes);
    }
    if (queued < MAX_QUEUED / 2 && src.isPaused()) src.resume();
    if (queue.length) timer = setTimeout(deliver, Math.max(0, queue[0].at - now));
  };

  src.on("data", (bytes: Buffer) => {
    const now = performance.now();
    const sendStart = Math.max(now, wireFreeAt);
    wireFreeAt = sendStart + (bytes.byteLength / shape.bytesPerSecond) * 1000;
    let at = wireFreeAt + shape.delayMs + random() * shape.jitterMs;
    const segments = Math.ceil(bytes.byteLength / SEGMENT);
    if (random() < 1 - Math.pow(1 - shape.lossRate, segments)) at += Math.max(MIN_RTO_MS, 4 * shape.delayMs);
    at = Math.max(at, lastAt);
    lastAt = at;
    queue.push({ at, bytes });
    queued += bytes.byteLength;
    if (queued > MAX_QUEUED) src.pause();
    if (!timer) timer = setTimeout(deliver, Math.max(0, queue[0].at - now));
  });
  const end = () => {
    clearTimeout(timer);
    dst.destroy();
  };
  src.on("close", end);
  src.on("error", end);
}

/** Listen on 127.0.0.1 and relay each connection to `targetPort` through a link of `shape`. */
export async function startSlowLink(targetPort: number, shape: LinkShape, seed: number): Promise<SlowLink> {
  const random = mulberry32(seed);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((inbound) => {
    const outbound = net.connect(targetPort, "127.0.0.1");
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => s.destroy());
    }
    shapedPipe(inbound, outbound, shape, random);
    shapedPipe(outbound, inbound, shape, random);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
