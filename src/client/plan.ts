// Pure parts of mirror and recursive copy: --exclude globs and the mirror plan (what to
// copy, overwrite, skip and remove), given both sides' listings.
import path from "node:path";

/** A file or object on one side, by its path relative to the mirrored root ('/'-separated). */
export interface Entry {
  rel: string;
  size: number;
  mtimeMs: number;
}

/** A test for --exclude patterns: a pattern matches a relative path, or its last segment (so `*.tmp` excludes nested files too). */
export function excluder(patterns: readonly string[]): (rel: string) => boolean {
  const globs = patterns.map((p) => new Bun.Glob(p));
  return (rel) => globs.some((g) => g.match(rel) || g.match(path.posix.basename(rel)));
}

/** What a mirror will do. */
export interface MirrorPlan {
  /** Missing on the destination. */
  copy: Entry[];
  /** Present but different (size, or the source is newer), with --overwrite. */
  overwrite: Entry[];
  /** Present and different, without --overwrite. */
  differ: Entry[];
  /** On the destination only, with --remove. */
  remove: Entry[];
  /** Already the same. */
  same: number;
}

/** Plan a mirror of `src` onto `dst`. Excluded paths are neither copied nor removed. */
export function planMirror(src: readonly Entry[], dst: readonly Entry[], opts: { remove: boolean; overwrite: boolean; exclude: readonly string[] }): MirrorPlan {
  const excluded = excluder(opts.exclude);
  const there = new Map(dst.map((e) => [e.rel, e]));
  const plan: MirrorPlan = { copy: [], overwrite: [], differ: [], remove: [], same: 0 };
  const seen = new Set<string>();
  for (const e of [...src].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) {
    if (excluded(e.rel)) continue;
    seen.add(e.rel);
    const d = there.get(e.rel);
    if (!d) plan.copy.push(e);
    else if (d.size !== e.size || e.mtimeMs > d.mtimeMs) (opts.overwrite ? plan.overwrite : plan.differ).push(e);
    else plan.same++;
  }
  if (opts.remove) for (const d of dst) if (!seen.has(d.rel) && !excluded(d.rel)) plan.remove.push(d);
  plan.remove.sort((a, b) => (a.rel < b.rel ? -1 : 1));
  return plan;
}

/** True when a plan changes nothing. */
export const planIsEmpty = (p: MirrorPlan) => p.copy.length + p.overwrite.length + p.remove.length === 0;
