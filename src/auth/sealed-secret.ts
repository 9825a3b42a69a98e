// Access-key secrets are sealed before they enter the index, with a key derived from the
// mesh key: a copy of the index files (a backup, a disk, another user reading index/*.log)
// reveals no secret without the mesh key, while every member holds the key and can still
// check signatures. XChaCha20-Poly1305 (libsodium) with a random 24-byte nonce per seal; the
// access key id is the associated data, so a sealed secret copied onto another key's record
// does not open there.
import { hkdfSync } from "node:crypto";
import sodium from "sodium-native";
import { KEYS_SHARD } from "../metadata/keys.ts";
import type { IndexStore, ScanRow } from "../store/index-store.ts";

/** HKDF info: names what the derived key is for, so it is never the key of anything else. */
const SEAL_INFO = "meshstore access-key seal v1";
/** Version tag in front of every sealed secret (a later scheme gets a new one). */
const SEALED_PREFIX = "xc1.";
const NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
const TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES;

/** Seals and opens access-key secrets with the mesh's sealing key. */
export interface SecretSealer {
  /** The secret sealed to its key id ("xc1." + base64url of nonce, ciphertext and tag). */
  seal(accessKeyId: string, secret: string): string;
  /** The secret, or null when it does not open (another mesh's key, another key id, or tampered). */
  open(accessKeyId: string, sealed: string): string | null;
}

/** The sealer of a mesh: its key is HKDF-SHA256 of the 32 mesh key bytes. */
export function createSecretSealer(meshKey: Uint8Array): SecretSealer {
  const key = Buffer.from(hkdfSync("sha256", meshKey, new Uint8Array(0), SEAL_INFO, sodium.crypto_aead_xchacha20poly1305_ietf_KEYBYTES));
  return {
    seal(accessKeyId, secret) {
      const message = Buffer.from(secret, "utf8");
      const nonce = Buffer.alloc(NONCE_BYTES);
      sodium.randombytes_buf(nonce);
      const sealed = Buffer.alloc(message.length + TAG_BYTES);
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sealed, message, Buffer.from(accessKeyId, "utf8"), null, nonce, key);
      return SEALED_PREFIX + Buffer.concat([nonce, sealed]).toString("base64url");
    },
    open(accessKeyId, text) {
      if (!text.startsWith(SEALED_PREFIX)) return null;
      const bytes = Buffer.from(text.slice(SEALED_PREFIX.length), "base64url");
      if (bytes.length < NONCE_BYTES + TAG_BYTES) return null;
      const message = Buffer.alloc(bytes.length - NONCE_BYTES - TAG_BYTES);
      try {
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(message, null, bytes.subarray(NONCE_BYTES), Buffer.from(accessKeyId, "utf8"), bytes.subarray(0, NONCE_BYTES), key);
      } catch {
        return null;
      }
      return message.toString("utf8");
    },
  };
}

/** A record with a clear secret, as the key store uses it. */
interface ClearRecord {
  accessKeyId: string;
  secretAccessKey: string;
}

/** The same record as the index stores it: the secret replaced by its sealed form. */
export type SealedRecord<T extends ClearRecord> = Omit<T, "secretAccessKey"> & { sealedSecret: string };

/** The record to store for `record`. */
export function sealRecord<T extends ClearRecord>(record: T, sealer: SecretSealer): SealedRecord<T> {
  const { secretAccessKey, ...rest } = record;
  return { ...rest, sealedSecret: sealer.seal(record.accessKeyId, secretAccessKey) };
}

/**
 * A stored record back in clear, or null if its secret does not open (the key then counts
 * as unknown). Records written before secrets were sealed carry `secretAccessKey` in clear
 * and are read as they are until `sealClearRows` reseals them.
 */
export function openRecord<T extends ClearRecord>(stored: unknown, sealer: SecretSealer): T | null {
  if (typeof stored !== "object" || stored === null) return null;
  const { sealedSecret, ...rest } = stored as Partial<SealedRecord<T>> & Partial<ClearRecord>;
  if (typeof sealedSecret !== "string") return typeof rest.secretAccessKey === "string" ? (stored as T) : null;
  if (typeof rest.accessKeyId !== "string") return null;
  const secretAccessKey = sealer.open(rest.accessKeyId, sealedSecret);
  return secretAccessKey === null ? null : ({ ...rest, secretAccessKey } as unknown as T);
}

/**
 * Seal the clear secrets an earlier version left in this peer's replica of the keys shard.
 * Each row keeps its timestamp (the same key, newly encoded), so no replica sees a newer
 * write and a revocation made meanwhile still wins; the store then compacts the shard so the
 * clear bytes leave its files too. Returns how many rows were sealed.
 */
export async function sealClearRows(store: IndexStore, sealer: SecretSealer): Promise<number> {
  const clear: ScanRow[] = [];
  for (const [row, entry] of await store.rowsIn(KEYS_SHARD)) {
    const value = entry.value as Partial<ClearRecord> | null;
    if (typeof value?.secretAccessKey === "string" && typeof value.accessKeyId === "string") {
      clear.push([row, { ts: entry.ts, value: sealRecord(value as ClearRecord, sealer) }]);
    }
  }
  return clear.length ? store.reencode(KEYS_SHARD, clear) : 0;
}
