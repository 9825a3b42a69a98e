// What the client prints: human lines on stdout, or one JSON object per line (--json) for
// scripts; errors on stderr (and as {status: "error"} lines with --json). It counts
// failures, so the command can exit 1 when any object failed while it kept going.
import { describeError } from "./errors.ts";

/** The client's printer for one run. */
export interface Output {
  readonly json: boolean;
  readonly quiet: boolean;
  /** Objects that failed so far. */
  readonly failures: number;
  /** A result: `record` as a JSON line, or `human` (when given and not quiet). */
  result(record: Record<string, unknown>, human?: string | string[]): void;
  /** A failure of one object or step: counted, printed on stderr (and as a JSON line). */
  fail(record: Record<string, unknown>, err: unknown): void;
  /** A note for people (stderr, never in --json or -q). */
  note(line: string): void;
  /** Where human lines go while a progress bar is drawn (it prints them above the bar). */
  setLineSink(sink: ((line: string) => void) | undefined): void;
}

/** Create the printer; `write` and `writeErr` default to the process's streams. */
export function createOutput(opts: { json: boolean; quiet: boolean; write?: (s: string) => void; writeErr?: (s: string) => void }): Output {
  const write = opts.write ?? ((s: string) => void process.stdout.write(s));
  const writeErr = opts.writeErr ?? ((s: string) => void process.stderr.write(s));
  let failures = 0;
  let sink: ((line: string) => void) | undefined;
  const human = (line: string) => (sink ? sink(line) : write(line + "\n"));
  return {
    json: opts.json,
    quiet: opts.quiet,
    get failures() {
      return failures;
    },
    result(record, text) {
      if (opts.json) return write(JSON.stringify({ status: "success", ...record }) + "\n");
      if (opts.quiet || text === undefined) return;
      for (const line of Array.isArray(text) ? text : [text]) human(line);
    },
    fail(record, err) {
      failures++;
      const error = describeError(err);
      if (opts.json) write(JSON.stringify({ status: "error", ...record, error }) + "\n");
      writeErr(`meshstore: ${error.message}\n`);
    },
    note(line) {
      if (!opts.json && !opts.quiet) writeErr(line + "\n");
    },
    setLineSink(s) {
      sink = s;
    },
  };
}
