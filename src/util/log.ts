// A logger per component, labelled by peer. The default level, info, prints what an
// operator needs to follow the mesh: members joining, suspect, dead and alive again,
// repair and drain starting and ending, every 5xx with its request id (and, with
// --access-log, one line per request). Chatty detail is debug (MESH_LOG=debug); MESH_LOG=warn
// keeps only problems. Never put a secret or a token in a line. Tests pass a sink that
// buffers lines per peer and prints them only when a test fails.

/** Log levels, most verbose first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Where formatted log lines go. */
export type LogSink = (level: LogLevel, line: string) => void;

/** A component's logger. */
export interface Logger {
  debug(msg: string, ...args: unknown[]): void;
  info(msg: string, ...args: unknown[]): void;
  warn(msg: string, ...args: unknown[]): void;
  error(msg: string, ...args: unknown[]): void;
  /** A child logger for a sub-component: `peer:membership`. */
  child(component: string): Logger;
}

function envLevel(): LogLevel {
  const v = process.env.MESH_LOG;
  return v === "debug" || v === "info" || v === "warn" || v === "error" ? v : "info";
}

/** The default sink: stderr. */
export const stderrSink: LogSink = (_level, line) => {
  process.stderr.write(line + "\n");
};

function format(arg: unknown): string {
  if (arg instanceof Error) return arg.message;
  if (typeof arg === "string") return arg;
  try {
    return JSON.stringify(arg);
  } catch {
    return String(arg);
  }
}

/** Create a logger labelled `label` writing to `sink` at `level` and above. */
export function createLogger(label: string, sink: LogSink = stderrSink, level: LogLevel = envLevel()): Logger {
  const emit = (lvl: LogLevel, msg: string, args: unknown[]) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const extra = args.length ? " " + args.map(format).join(" ") : "";
    sink(lvl, `${new Date().toISOString()} ${lvl.toUpperCase().padEnd(5)} [${label}] ${msg}${extra}`);
  };
  return {
    debug: (m, ...a) => emit("debug", m, a),
    info: (m, ...a) => emit("info", m, a),
    warn: (m, ...a) => emit("warn", m, a),
    error: (m, ...a) => emit("error", m, a),
    child: (c) => createLogger(`${label}:${c}`, sink, level),
  };
}
