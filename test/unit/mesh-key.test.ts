import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createMeshKeyFile, loadMeshKey, MESH_KEY_FILE, meshKeyFingerprint, newMeshKeyText, parseMeshKey, resolveMeshKey } from "../../src/net/mesh-key.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "meshstore-meshkey-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mesh key files (swarm key v1)", () => {
  test("a new key is in the swarm key v1 format and parses back; the fingerprint is not the key", () => {
    const text = newMeshKeyText();
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
    const psk = parseMeshKey(text, "k");
    expect(psk.byteLength).toBe(32);
    expect(Buffer.from(psk).toString("hex")).toBe(text.split("\n")[2]);
    const fp = meshKeyFingerprint(psk);
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(text).not.toContain(fp);
    // The format go-ipfs and @libp2p/pnet write, with CRLF line ends too.
    expect(parseMeshKey(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${"ab".repeat(32)}`, "k")).toEqual(new Uint8Array(32).fill(0xab));
  });

  test("malformed files are refused with the file named", () => {
    for (const bad of ["", "/key/swarm/psk/1.0.0/\n/base64/\n" + "a".repeat(64), "/key/swarm/psk/1.0.0/\n/base16/\n" + "a".repeat(63), "/key/swarm/psk/1.0.0/\n/base16/\n" + "g".repeat(64)]) {
      expect(() => parseMeshKey(bad, "/some/file")).toThrow("/some/file is not a mesh key");
    }
  });

  test("files are written 0600, never overwritten, and refused when others can read them", async () => {
    const file = path.join(dir, "a.key");
    const made = await createMeshKeyFile(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await loadMeshKey(file)).fingerprint).toBe(made.fingerprint);
    await expect(createMeshKeyFile(file)).rejects.toThrow("already exists");
    chmodSync(file, 0o640);
    await expect(loadMeshKey(file)).rejects.toThrow(`the mesh key ${file} is readable by other users`);
    await expect(loadMeshKey(path.join(dir, "missing.key"))).rejects.toThrow("no such file");
  });

  test("a new mesh creates its key in the data folder; a joining peer without one is refused", async () => {
    const data = path.join(dir, "peer");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(data);
    await expect(resolveMeshKey(data, undefined, true)).rejects.toThrow("joining a mesh needs its key");
    const first = await resolveMeshKey(data, undefined, false);
    expect(first.created).toBe(true);
    expect(first.key.file).toBe(path.join(data, MESH_KEY_FILE));
    const again = await resolveMeshKey(data, undefined, true);
    expect(again).toEqual({ key: first.key, created: false });
    const other = path.join(dir, "other.key");
    writeFileSync(other, newMeshKeyText(), { mode: 0o600 });
    expect((await resolveMeshKey(data, other, true)).key.file).toBe(other);
  });
});
