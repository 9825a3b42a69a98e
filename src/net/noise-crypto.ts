// Noise's cipher on Bun. Bun's node:crypto has no chacha20-poly1305, so the noise
// package's default crypto fails on any message of 1,200 bytes or more. We hand it
// libsodium (sodium-native, ~1.7 GB/s here) when the native addon loads, and the
// package's pure-JS implementation (@noble) otherwise, which is slower but correct.
import { pureJsCrypto, type ICryptoInterface } from "@chainsafe/libp2p-noise";
// Structural, so that it accepts whichever copy of uint8arraylist noise was built with.
type Bytes = Uint8Array | { subarray(): Uint8Array };

const TAG_BYTES = 16;

/** Which chacha20-poly1305 implementation the peer links use. */
export type NoiseCryptoName = "sodium-native" | "pure-js";

interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
  crypto_hash_sha256(out: Uint8Array, data: Uint8Array): void;
}

function flat(data: Bytes): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

function loadSodium(): Sodium | undefined {
  if (process.env.MESH_NOISE_CRYPTO === "pure-js") return undefined;
  try {
    // require() so a missing or broken native addon is a caught error, not a failed import.
    return require("sodium-native") as Sodium;
  } catch {
    return undefined;
  }
}

function sodiumCrypto(sodium: Sodium): ICryptoInterface {
  return {
    ...pureJsCrypto,
    hashSHA256(data) {
      const out = new Uint8Array(32);
      sodium.crypto_hash_sha256(out, flat(data));
      return out;
    },
    chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
      const m = flat(plaintext);
      const c = Buffer.allocUnsafe(m.byteLength + TAG_BYTES);
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(c, m, ad, null, nonce, k);
      return c;
    },
    chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
      const c = flat(ciphertext);
      if (c.byteLength < TAG_BYTES) throw new Error("noise: ciphertext shorter than its tag");
      const len = c.byteLength - TAG_BYTES;
      const m = dst && dst.byteLength >= len ? dst.subarray(0, len) : Buffer.allocUnsafe(len);
      // sodium throws on a bad tag, which is what noise expects of a failed decrypt.
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(m, null, c, ad, nonce, k);
      return m;
    },
  };
}

const sodium = loadSodium();

/** The crypto to pass as `noise({ crypto })`. */
export const noiseCrypto: ICryptoInterface = sodium ? sodiumCrypto(sodium) : pureJsCrypto;

/** Name of the implementation in use, for logs and /cluster/status. */
export const noiseCryptoName: NoiseCryptoName = sodium ? "sodium-native" : "pure-js";
