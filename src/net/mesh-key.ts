// The mesh key: a pre-shared key that every p2p connection is wrapped in (libp2p private
// networks), so only holders of the key can connect at all. The file is libp2p's swarm
// key v1 format, as go-ipfs and js-libp2p write it:
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits>
import { createHash, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../errors.ts";
import { writePrivateFile } from "../util/private-file.ts";

/** The key file a new mesh's first peer creates in its data folder. */
export const MESH_KEY_FILE = "mesh.key";

const HEADER = "/key/swarm/psk/1.0.0/";
const CODEC = "/base16/";

/** A loaded mesh key. */
export interface MeshKey {
  /** The 32 key bytes. */
  psk: Uint8Array;
  /** The file it came from. */
  file: string;
  /** A short public name of the key (never the key): the first 16 hex digits of its SHA-256. */
  fingerprint: string;
}

/** A fresh key in the swarm key v1 format. */
export function newMeshKeyText(): string {
  return `${HEADER}\n${CODEC}\n${randomBytes(32).toString("hex")}\n`;
}

/** Parse a swarm key v1 file's text; throws ConfigError naming `file`. */
export function parseMeshKey(text: string, file: string): Uint8Array {
  const [header, codec, hex] = text.split(/\r\n|\r|\n/).map((l) => l.trim());
  if (header !== HEADER || codec !== CODEC || !/^[0-9a-fA-F]{64}$/.test(hex ?? "")) {
    throw new ConfigError(`${file} is not a mesh key: expected the lines "${HEADER}", "${CODEC}" and 64 hex digits`);
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** The public fingerprint of a key. */
export function meshKeyFingerprint(psk: Uint8Array): string {
  return createHash("sha256").update(psk).digest("hex").slice(0, 16);
}

/** Load a key file, refusing one that other users could read. */
export async function loadMeshKey(file: string): Promise<MeshKey> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw new ConfigError(`cannot read the mesh key ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if ((info.mode & 0o077) !== 0) throw new ConfigError(`the mesh key ${file} is readable by other users (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`);
  const psk = parseMeshKey(await readFile(file, "utf8"), file);
  return { psk, file, fingerprint: meshKeyFingerprint(psk) };
}

/**
 * The key a peer starts with: the file it was given, else the one in its data folder from
 * an earlier start. A peer that starts a new mesh (no bootstrap) creates one; a peer that
 * joins without a key cannot, since only a copy of the mesh's own key lets it in.
 */
export async function resolveMeshKey(dataDir: string, explicitFile: string | undefined, joining: boolean): Promise<{ key: MeshKey; created: boolean }> {
  if (explicitFile) return { key: await loadMeshKey(explicitFile), created: false };
  const own = path.join(dataDir, MESH_KEY_FILE);
  if (await stat(own).then(() => true, () => false)) return { key: await loadMeshKey(own), created: false };
  if (joining) throw new ConfigError(`joining a mesh needs its key: pass --mesh-key FILE (a private copy of the first peer's ${MESH_KEY_FILE}), or set MESH_KEY_FILE`);
  return { key: await createMeshKeyFile(own), created: true };
}

/** Write a fresh key to `file` (mode 0600); refuses to overwrite one. */
export async function createMeshKeyFile(file: string): Promise<MeshKey> {
  if (await stat(file).then(() => true, () => false)) throw new ConfigError(`${file} already exists; a mesh key is never overwritten`);
  const text = newMeshKeyText();
  await writePrivateFile(file, text);
  const psk = parseMeshKey(text, file);
  return { psk, file, fingerprint: meshKeyFingerprint(psk) };
}
