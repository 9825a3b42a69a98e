// Sample each peer's resident set size from /cluster/status while something runs.

export interface RssSample {
  /** Max RSS seen per peer, bytes. */
  maxPerPeer: number[];
  /** First sample per peer, bytes. */
  firstPerPeer: number[];
  max: number;
  samples: number;
}

export function sampleRss(targets: string[], intervalMs = 200): { stop(): Promise<RssSample> } {
  const maxPerPeer = targets.map(() => 0);
  const firstPerPeer = targets.map(() => 0);
  let samples = 0;
  let running = true;
  const one = async (t: string, i: number) => {
    try {
      const s = (await (await fetch(`${t}/cluster/status`)).json()) as { process: { rssBytes: number } };
      if (!firstPerPeer[i]) firstPerPeer[i] = s.process.rssBytes;
      maxPerPeer[i] = Math.max(maxPerPeer[i], s.process.rssBytes);
    } catch {
      // a busy or dying peer: skip this sample
    }
  };
  const loop = (async () => {
    while (running) {
      await Promise.all(targets.map(one));
      samples++;
      await Bun.sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await Promise.all(targets.map(one));
      return { maxPerPeer, firstPerPeer, max: Math.max(...maxPerPeer), samples };
    },
  };
}
