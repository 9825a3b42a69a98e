// One progress bar on standard error for a whole command (bytes, percentage, rate, ETA,
// files done), drawn only when standard error is a terminal and neither -q nor --json was
// given; otherwise every call is a no-op. cli-progress draws it; lines printed meanwhile go
// above the bar through its log().
import cliProgress from "cli-progress";
import { humanBytes } from "./units.ts";

/** A command's progress. */
export interface Progress {
  /** Add to the expected total (bytes, files). */
  grow(bytes: number, files?: number): void;
  /** Bytes moved (negative: a retried part gives its bytes back). */
  add(bytes: number): void;
  /** One file finished. */
  fileDone(): void;
  /** Draw the final state (100% when everything arrived) and release the terminal. */
  stop(): void;
}

const NOOP: Progress = { grow() {}, add() {}, fileDone() {}, stop() {} };

/** Whether a bar should be drawn for this run. */
export function wantsBar(opts: { json: boolean; quiet: boolean }, stderrIsTty = process.stderr.isTTY === true): boolean {
  return stderrIsTty && !opts.json && !opts.quiet;
}

/** Start the bar (or a no-op when `enabled` is false); `onLines` receives its line printer while it is drawn. */
export function startProgress(enabled: boolean, label: string, onLines?: (sink: ((line: string) => void) | undefined) => void): Progress {
  if (!enabled) return NOOP;
  const multi = new cliProgress.MultiBar({
    format: `${label} {bar} {percentage}% | {moved}/{size} | {rate}/s | ETA {eta_formatted} | {done}/{files} files`,
    stream: process.stderr,
    hideCursor: true,
    fps: 8,
    etaBuffer: 50,
    barsize: 30,
    autopadding: true,
  });
  let total = 0;
  let moved = 0;
  let files = 0;
  let done = 0;
  const started = Date.now();
  const payload = () => ({ moved: humanBytes(moved), size: humanBytes(total), rate: humanBytes(Math.round(moved / Math.max(0.001, (Date.now() - started) / 1000))), done, files });
  // A zero total would draw NaN%: start at 1 and keep the bar's total at least 1.
  const bar = multi.create(1, 0, payload());
  const redraw = () => {
    bar.setTotal(Math.max(1, total));
    bar.update(total === 0 && files > 0 && done === files ? 1 : moved, payload());
  };
  onLines?.((line) => multi.log(line + "\n"));
  let stopped = false;
  return {
    grow(bytes, n = 0) {
      total += bytes;
      files += n;
      redraw();
    },
    add(bytes) {
      moved += bytes;
      redraw();
    },
    fileDone() {
      done++;
      redraw();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      redraw();
      multi.update();
      multi.stop();
      onLines?.(undefined);
    },
  };
}
