// Sizes and durations as people type and read them.
import { UsageError } from "./errors.ts";

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };

/** "64MiB", "16M" (binary), "5MB" (decimal) or plain bytes, for flag `flag`. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag} takes a size such as 16MiB, got "${text}"`);
  return Math.round(Number(m[1]) * unit);
}

/** A count for flag `flag` between `min` and `max`. */
export function parseCount(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, got "${text}"`);
  return n;
}

/** "90s", "15m", "12h", "7d" or plain seconds, for flag `flag`, as seconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag} takes a duration such as 15m, 12h or 7d, got "${text}"`);
  return Number(m[1]) * { "": 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "" | "s" | "m" | "h" | "d"];
}

/** Bytes in binary units: "0 B", "1.5 KiB", "16.0 MiB". */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** Seconds as "3d 4h", "2h 5m", "4m 10s", "12s". */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

/** A time as "2026-01-02 03:04:05" (UTC). */
export function humanTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}
