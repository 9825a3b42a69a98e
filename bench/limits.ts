// The limits of this machine, measured in-process: sequential disk write (4 MiB pieces,
// then fsync) and read in the OS temp dir, SHA-256 (Bun.CryptoHasher) and
// chacha20-poly1305 (sodium-native, the cipher peer links use; see src/net/noise-crypto.ts).
//   bun bench/limits.ts [--mib 256]
import { closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { mbps } from "./stats.ts";

const PIECE = 4 * 1024 * 1024;

export interface DiskLimits {
  writeMBps: number;
  readMBps: number;
  mib: number;
}

/** Write `mib` MiB in 4 MiB pieces, fsync, then read it back sequentially. */
export function measureDisk(mib: number): DiskLimits {
  const dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-limits-"));
  const file = path.join(dir, "seq.bin");
  const piece = new Uint8Array(PIECE);
  crypto.getRandomValues(piece.subarray(0, 65536));
  for (let off = 65536; off < PIECE; off *= 2) piece.copyWithin(off, 0, off);
  const pieces = Math.max(1, Math.round(mib / 4));
  try {
    let fd = openSync(file, "w");
    const t0 = performance.now();
    for (let i = 0; i < pieces; i++) {
      new DataView(piece.buffer).setUint32(0, i);
      writeSync(fd, piece);
    }
    fsyncSync(fd);
    closeSync(fd);
    const writeSecs = (performance.now() - t0) / 1000;
    fd = openSync(file, "r");
    const t1 = performance.now();
    let total = 0;
    for (let n; (n = readSync(fd, piece, 0, PIECE, null)) > 0; ) total += n;
    closeSync(fd);
    const readSecs = (performance.now() - t1) / 1000;
    return { writeMBps: mbps(pieces * PIECE, writeSecs), readMBps: mbps(total, readSecs), mib: pieces * 4 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Run `step` (which processes `bytes`) repeatedly for about `ms` and return MB/s. */
function rate(bytes: number, ms: number, step: () => void): number {
  step(); // warm up
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < ms) {
    step();
    n++;
  }
  return mbps(n * bytes, (performance.now() - t0) / 1000);
}

/** SHA-256 over 4 MiB pieces (a chunk), MB/s. */
export function measureSha256(ms = 500): number {
  const data = new Uint8Array(PIECE);
  crypto.getRandomValues(data.subarray(0, 65536));
  return rate(PIECE, ms, () => {
    const h = new Bun.CryptoHasher("sha256");
    h.update(data);
    h.digest();
  });
}

interface SodiumAead {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
}

/** chacha20-poly1305-ietf encryption of noise-sized messages (65,519 B + 16 B tag), MB/s; NaN if sodium-native does not load. */
export function measureChacha(ms = 500): number {
  let sodium: SodiumAead;
  try {
    sodium = require("sodium-native") as SodiumAead;
  } catch {
    return NaN;
  }
  const m = new Uint8Array(65535 - 16);
  const c = new Uint8Array(65535);
  const nonce = new Uint8Array(12);
  const key = crypto.getRandomValues(new Uint8Array(32));
  return rate(m.byteLength, ms, () => {
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, null, null, nonce, key);
  });
}

export interface MachineLimits {
  disk: DiskLimits;
  sha256MBps: number;
  chachaMBps: number;
}

export function measureLimits(opts: { diskMib: number }): MachineLimits {
  return { disk: measureDisk(opts.diskMib), sha256MBps: measureSha256(), chachaMBps: measureChacha() };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { mib: { type: "string", default: "256" } } });
  console.log(measureLimits({ diskMib: Number(values.mib) }));
}
