import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createSecretSealer, openRecord, sealClearRows, sealRecord } from "../../src/auth/sealed-secret.ts";
import { deletesAreFinal } from "../../src/metadata/keys.ts";
import { openIndexStore } from "../../src/store/index-store.ts";

const SECRET = "s3cr3t-0123456789-abcdefghij-KLMNOPQRST";

describe("sealed access-key secrets", () => {
  test("a sealed secret opens only with the same mesh key and the same key id, and never shows the secret", () => {
    const meshKey = randomBytes(32);
    const sealer = createSecretSealer(meshKey);
    const sealed = sealer.seal("MKAAAAAAAAAAAAAAAAAA", SECRET);
    for (const form of [SECRET, Buffer.from(SECRET).toString("base64"), Buffer.from(SECRET).toString("base64url"), Buffer.from(SECRET).toString("hex")]) {
      expect(sealed.includes(form)).toBe(false);
    }
    expect(sealer.open("MKAAAAAAAAAAAAAAAAAA", sealed)).toBe(SECRET);
    // Same key bytes loaded again (another peer of the mesh): opens.
    expect(createSecretSealer(Uint8Array.from(meshKey)).open("MKAAAAAAAAAAAAAAAAAA", sealed)).toBe(SECRET);
    // Another mesh key, another key id, a flipped byte, a cut or garbage: does not open.
    expect(createSecretSealer(randomBytes(32)).open("MKAAAAAAAAAAAAAAAAAA", sealed)).toBeNull();
    expect(sealer.open("MKBBBBBBBBBBBBBBBBBB", sealed)).toBeNull();
    const flipped = sealed.slice(0, -2) + (sealed.at(-2) === "A" ? "B" : "A") + sealed.at(-1);
    expect(sealer.open("MKAAAAAAAAAAAAAAAAAA", flipped)).toBeNull();
    expect(sealer.open("MKAAAAAAAAAAAAAAAAAA", sealed.slice(0, 20))).toBeNull();
    expect(sealer.open("MKAAAAAAAAAAAAAAAAAA", "xc1.")).toBeNull();
    expect(sealer.open("MKAAAAAAAAAAAAAAAAAA", SECRET)).toBeNull();
    // A fresh nonce each time: two seals of one secret differ.
    expect(sealer.seal("MKAAAAAAAAAAAAAAAAAA", SECRET)).not.toBe(sealed);
  });

  test("records: the stored form has no clear secret; clear records of earlier versions still read; a record moved to another id does not open", () => {
    const sealer = createSecretSealer(randomBytes(32));
    const key = { accessKeyId: "MKAAAAAAAAAAAAAAAAAA", secretAccessKey: SECRET, name: "n", admin: false, buckets: { b: "read" }, createdMs: 1 };
    const stored = sealRecord(key, sealer);
    expect(Object.keys(stored).sort()).toEqual(["accessKeyId", "admin", "buckets", "createdMs", "name", "sealedSecret"]);
    expect(JSON.stringify(stored).includes(SECRET)).toBe(false);
    expect(openRecord(stored, sealer)).toEqual(key);
    expect(openRecord(key, sealer)).toEqual(key);
    expect(openRecord({ ...stored, accessKeyId: "MKBBBBBBBBBBBBBBBBBB" }, sealer)).toBeNull();
    expect(openRecord(stored, createSecretSealer(randomBytes(32)))).toBeNull();
    for (const junk of [null, 7, "x", {}, { accessKeyId: "MKAAAAAAAAAAAAAAAAAA" }, { sealedSecret: stored.sealedSecret }]) expect(openRecord(junk, sealer)).toBeNull();
  });

  test("an earlier version's clear rows are sealed in place: same timestamps and digests, and no clear byte left in any LevelDB file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-seal-"));
    try {
      const sealer = createSecretSealer(randomBytes(32));
      const clear = { accessKeyId: "MKAAAAAAAAAAAAAAAAAA", secretAccessKey: SECRET, name: "", admin: true, buckets: {}, createdMs: 1 };
      const ts = "1700000000000-000000-old";
      let store = await openIndexStore(dir, { deletesAreFinal });
      await store.apply("k", clear.accessKeyId, { ts, value: clear });
      await store.apply("k", "MKREVOKED00000000000", { ts, value: null });
      await store.apply("b", "a-bucket", { ts, value: { createdMs: 1 } });
      await store.close();
      // Reopened, the clear row moves from the log into a table file: both must lose it.
      store = await openIndexStore(dir, { deletesAreFinal });
      const digests = store.digests("k");
      expect(await sealClearRows(store, sealer)).toBe(1);
      expect(await sealClearRows(store, sealer)).toBe(0);
      const row = await store.get("k", clear.accessKeyId);
      expect(row?.ts).toBe(ts);
      expect(Object.keys(row?.value as object)).not.toContain("secretAccessKey");
      expect(openRecord(row?.value, sealer)).toEqual(clear);
      expect(store.digests("k")).toEqual(digests);
      expect(await store.get("k", "MKREVOKED00000000000")).toEqual({ ts, value: null });
      await store.close();
      const holding = readdirSync(dir).filter((f) => readFileSync(path.join(dir, f)).includes(SECRET));
      expect(holding).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
