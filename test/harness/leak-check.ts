// The suite-wide check that no secret reaches a log line. The harness hands it every log
// line of every peer the suite starts (in-process peers' sinks, child processes' stdout and
// stderr) and every secret the suite creates (admin keys, access keys' secrets and native
// tokens, mesh keys, webhook secrets); test/preload.ts checks the lines captured since the
// last check after every test and fails that test, naming the secret's kind and the line
// with the secret masked. A native token is also caught by its shape, registered or not.
// Lines are dropped once checked, so memory stays bounded however long the suite runs.
import { nativeToken } from "../../src/auth/access-keys.ts";

/** What a secret is, as a leak report names it. */
export type SecretKind = "admin secret" | "admin token" | "secret access key" | "native token" | "mesh key" | "webhook secret" | "remote credential";

/** Shorter values are not secrets worth matching (the server refuses secrets under 16 characters). */
const MIN_SECRET_CHARS = 16;
/** Secrets remembered at most; the suite creates a few hundred. Past this, the oldest go. */
const MAX_SECRETS = 100_000;
/** Lines held before a check; past this they are checked at once (findings wait for the next report). */
const MAX_PENDING_LINES = 20_000;
/** Findings kept for one report. */
const MAX_FINDINGS = 20;
/** A native token's shape (nativeToken in src/auth/access-keys.ts): "mst_", the key id, "_", a base64url HMAC-SHA256. */
export const TOKEN_SHAPE = /mst_[A-Z0-9]{16,64}_[A-Za-z0-9_-]{43}/g;

/** One captured line that holds a secret. */
export interface Leak {
  kind: SecretKind | "native token (by its shape)";
  source: string;
  /** The line with every secret in it masked. */
  masked: string;
}

/** `abcd…(40 chars)`: enough to tell secrets apart in a report, not enough to use one. */
export function mask(secret: string): string {
  return `${secret.slice(0, 4)}…(${secret.length} chars)`;
}

/** Secrets known so far and the lines captured since the last check. */
export class LeakChecker {
  private readonly secrets = new Map<string, SecretKind>();
  private pending: Array<{ source: string; line: string }> = [];
  private findings: Leak[] = [];
  private overflow = 0;

  /** Remember `value` as a secret of `kind` (values too short to be secrets are ignored). */
  register(kind: SecretKind, value: string | undefined): void {
    if (!value || value.length < MIN_SECRET_CHARS || this.secrets.has(value)) return;
    if (this.secrets.size >= MAX_SECRETS) this.secrets.delete(this.secrets.keys().next().value!);
    this.secrets.set(value, kind);
  }

  /** Remember an access key's secret and the native token derived from it. */
  registerKey(key: { accessKeyId?: string; secretAccessKey?: string; token?: string }, admin = false): void {
    this.register(admin ? "admin secret" : "secret access key", key.secretAccessKey);
    this.register(admin ? "admin token" : "native token", key.token);
    if (key.accessKeyId && key.secretAccessKey) this.register(admin ? "admin token" : "native token", nativeToken(key.accessKeyId, key.secretAccessKey));
  }

  /** Remember every `"secretAccessKey"` and `"token"` in a JSON answer (a key creation's body, `keys create` output). */
  registerFromJson(text: string): void {
    if (!text.includes("secretAccessKey")) return;
    for (const m of text.matchAll(/"(secretAccessKey|token)"\s*:\s*"([^"]+)"/g)) this.register(m[1] === "token" ? "native token" : "secret access key", m[2]);
  }

  /** Remember the 64 hex digits of a mesh key file's text. */
  registerMeshKey(text: string): void {
    for (const m of text.matchAll(/^[0-9a-fA-F]{64}$/gm)) this.register("mesh key", m[0]);
  }

  /** One log line from `source` (a peer's label, a process's name). */
  capture(source: string, line: string): void {
    this.pending.push({ source, line });
    if (this.pending.length >= MAX_PENDING_LINES) this.check();
  }

  /**
   * A sink for a byte stream's text (a child process's stdout or stderr): it cuts lines,
   * holding a partial last line until the next chunk so that no secret is split in two.
   * `skip` drops lines that are meant to show a secret (the admin key a new mesh prints once).
   */
  lines(source: string, skip?: (line: string) => boolean): { write(text: string): void; end(): void } {
    let partial = "";
    const take = (line: string) => {
      if (!skip?.(line)) this.capture(source, line);
    };
    return {
      write: (text) => {
        const parts = (partial + text).split("\n");
        partial = parts.pop()!;
        for (const line of parts) take(line);
        if (partial.length > 64 * 1024) (take(partial), (partial = ""));
      },
      end: () => {
        if (partial) take(partial);
        partial = "";
      },
    };
  }

  /** Check the lines captured since the last check against every secret known now, then drop them. */
  check(): void {
    const lines = this.pending;
    this.pending = [];
    if (!lines.length) return;
    const secrets = [...this.secrets];
    for (const { source, line } of lines) {
      let found: Leak["kind"] | undefined;
      let masked = line;
      for (const [secret, kind] of secrets) {
        if (!line.includes(secret)) continue;
        found ??= kind;
        masked = masked.split(secret).join(`<${kind} ${mask(secret)}>`);
      }
      TOKEN_SHAPE.lastIndex = 0;
      if (TOKEN_SHAPE.test(masked)) {
        found ??= "native token (by its shape)";
        masked = masked.replace(TOKEN_SHAPE, (t) => `<native token ${mask(t)}>`);
      }
      if (!found) continue;
      if (this.findings.length < MAX_FINDINGS) this.findings.push({ kind: found, source, masked: masked.length > 500 ? masked.slice(0, 500) + "…" : masked });
      else this.overflow++;
    }
  }

  /** Check, and return (and forget) what leaked since the last report; `more` counts leaking lines past the first few. */
  takeLeaks(): { leaks: Leak[]; more: number } {
    this.check();
    const out = { leaks: this.findings, more: this.overflow };
    this.findings = [];
    this.overflow = 0;
    return out;
  }

  /** Check, and throw an error describing every leak since the last report. */
  assertNoLeaks(when: string): void {
    const { leaks, more } = this.takeLeaks();
    if (!leaks.length) return;
    const lines = leaks.map((l) => `  ${l.kind} in ${l.source}: ${l.masked}`);
    if (more) lines.push(`  …and ${more} more line(s)`);
    throw new Error(`a secret reached a log line (${when}):\n${lines.join("\n")}`);
  }

  /** Whether `value` is a secret this checker looks for. */
  knows(value: string): boolean {
    return this.secrets.has(value);
  }

  /** How many secrets are known and lines wait for a check (for the checker's own test). */
  sizes(): { secrets: number; pending: number } {
    return { secrets: this.secrets.size, pending: this.pending.length };
  }
}

/** The whole suite's checker: one per process, whichever copy of this module a file imported. */
export const suiteLeaks: LeakChecker = ((globalThis as Record<symbol, unknown>)[Symbol.for("meshstore.test.leaks")] ??= new LeakChecker()) as LeakChecker;
