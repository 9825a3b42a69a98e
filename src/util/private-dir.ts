import { chmod, lstat, mkdir, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { ConfigError } from "../errors.ts";

/** Permission bits of group and others. */
const OPEN_TO_OTHERS = 0o077;

/**
 * Create `dir` if it is missing and make it private to its owner (0700). A folder that was
 * open to others (earlier versions left 0755 folders and 0644 files) has everything in it
 * tightened as well, once: later starts find the folder 0700 and skip the walk, which costs a
 * stat per file on a large store. Returns how many entries were tightened.
 *
 * Why the folder is the guard: LevelDB creates its files with the process umask, which only
 * the CLI sets (src/cli.ts). An embedding application keeps its own umask, and files it
 * leaves readable are still out of reach, since no other user can enter a 0700 folder.
 */
export async function makePrivateDir(dir: string): Promise<number> {
  try {
    return await tightenDir(dir);
  } catch (err) {
    // Typically a folder that belongs to another user: say which one, not just EPERM.
    throw new ConfigError(`cannot make the data folder ${dir} private to this user: ${(err as Error).message}`);
  }
}

async function tightenDir(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // stat, not lstat: the data folder itself may well be a symlink to where the space is.
  const mode = (await stat(dir)).mode;
  if ((mode & OPEN_TO_OTHERS) === 0) return 0;
  let tightened = 0;
  const tighten = async (entry: string, entryMode: number) => {
    if ((entryMode & OPEN_TO_OTHERS) === 0) return;
    await chmod(entry, entryMode & 0o7700);
    tightened++;
  };
  // Only folders wait in the list (a few hundred), never the files of a large chunk store.
  const folders = [dir];
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      // A symlink's own mode means nothing, and chmod would follow it out of the folder.
      if (entry.isSymbolicLink()) continue;
      await tighten(full, (await lstat(full)).mode);
      if (entry.isDirectory()) folders.push(full);
    }
  }
  // The folder itself last: a start that dies half-way finds it still open and walks again.
  await tighten(dir, mode);
  return tightened;
}
