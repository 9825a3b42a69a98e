// The noise cipher we hand libp2p must agree byte for byte with the reference
// pure-JS implementation at every size, including the >= 1,200-byte messages that
// break Bun's node:crypto path.
import { pureJsCrypto } from "@chainsafe/libp2p-noise";
import { describe, expect, test } from "bun:test";
import { noiseCrypto, noiseCryptoName } from "../../src/net/noise-crypto.ts";
import { seededBytes } from "../harness/random.ts";

const key = seededBytes(32, 1);
const nonce = seededBytes(12, 2);
const ad = seededBytes(32, 3);

describe(`noise crypto (${noiseCryptoName})`, () => {
  test("sodium-native loads under Bun on this machine", () => {
    expect(noiseCryptoName).toBe("sodium-native");
  });

  for (const size of [0, 1, 1199, 1200, 4096, 65_519, 65_535]) {
    test(`encrypt/decrypt interoperate with the reference at ${size} bytes`, () => {
      const plain = seededBytes(size, size + 7);
      const sealed = noiseCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key);
      const reference = pureJsCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, key);
      expect(Buffer.from(sealed.subarray()).equals(Buffer.from(reference.subarray()))).toBe(true);
      const opened = noiseCrypto.chaCha20Poly1305Decrypt(reference, nonce, ad, key);
      expect(Buffer.from(opened.subarray()).equals(Buffer.from(plain))).toBe(true);
    });
  }

  test("a tampered ciphertext is rejected", () => {
    const sealed = Buffer.from(noiseCrypto.chaCha20Poly1305Encrypt(seededBytes(2000, 9), nonce, ad, key).subarray());
    sealed[10] ^= 1;
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, key)).toThrow();
  });

  test("sha256 matches", () => {
    const data = seededBytes(5000, 4);
    expect(Buffer.from(noiseCrypto.hashSHA256(data)).equals(Buffer.from(pureJsCrypto.hashSHA256(data)))).toBe(true);
  });
});
