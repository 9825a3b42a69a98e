// The layering rules, read from the source itself: the local stores do not know the
// layers above them, the config does not know auth, and only src/metadata/keys.ts knows
// how index rows are named (the "<bucket>\0<key>" family). Plain text checks, so a rule
// broken in a new file fails here without anyone remembering to add that file.
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";

const SRC = path.resolve(import.meta.dir, "../../src");

/** Every .ts file under src/, as a path relative to src/ with forward slashes. */
function sourceFiles(): string[] {
  return (fs.readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts")).map((f) => f.split(path.sep).join("/")).sort();
}

const read = (file: string) => fs.readFileSync(path.join(SRC, file), "utf8");

/** The src/-relative files a file imports (static and dynamic imports, re-exports); packages are left out. */
function importsOf(file: string): string[] {
  const specs = [...read(file).matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["']([^"']+)["']/gm)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith(".")).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)));
}

/** The code of a file without its comment lines (comments may describe the row format). */
function codeLines(file: string): Array<[line: number, text: string]> {
  return read(file)
    .split("\n")
    .map((text, i) => [i + 1, text] as [number, string])
    .filter(([, text]) => !/^\s*(\/\/|\/\*|\*)/.test(text));
}

describe("layers", () => {
  test("the source tree is where this test looks", () => {
    expect(sourceFiles()).toContain("store/index-store.ts");
    expect(importsOf("peer/components.ts")).toContain("metadata/keys.ts");
  });

  test("src/store/ imports nothing from src/metadata/ or src/api/", () => {
    const wrong = sourceFiles()
      .filter((f) => f.startsWith("store/"))
      .flatMap((f) => importsOf(f).filter((t) => t.startsWith("metadata/") || t.startsWith("api/")).map((t) => `${f} -> ${t}`));
    expect(wrong).toEqual([]);
  });

  test("src/config.ts imports nothing from src/auth/", () => {
    expect(importsOf("config.ts").filter((t) => t.startsWith("auth/"))).toEqual([]);
  });

  test("only src/metadata/keys.ts builds index rows with a NUL", () => {
    // NULs that are not index rows: hash inputs, each named with why.
    const notRows = new Map([
      ["placement/ring.ts", "a virtual node's hash input, `${id}\\0${block}`"],
      ["store/index-store.ts", "a row's digest input, `${row}\\0${ts}`"],
      ["cli/launcher.ts", "/proc/<pid>/cmdline, whose arguments are NUL-separated"],
      ["search/encoding.ts", "a string value's escape and end marker inside an index row (order-preserving encodings)"],
    ]);
    const nul = /\\0(?![0-7])|\\x00|\\u0000|\\u\{0+\}|fromCharCode\(0\)/;
    const found = sourceFiles()
      .filter((f) => f !== "metadata/keys.ts")
      .flatMap((f) => codeLines(f).filter(([, text]) => nul.test(text)).map(([line, text]) => ({ where: `${f}:${line}`, file: f, text: text.trim() })));
    expect(found.filter((h) => !notRows.has(h.file)).map((h) => `${h.where}: ${h.text}`)).toEqual([]);
    // Each exception is one line, so a row built beside it would still be caught.
    for (const file of notRows.keys()) expect(found.filter((h) => h.file === file).length, file).toBe(1);
  });

  test("the list-every-page loop is written once (src/metadata/listing.ts)", () => {
    const loops = sourceFiles().filter((f) => codeLines(f).some(([, text]) => /\bpage\.next\s*\?\?\s*undefined/.test(text)));
    expect(loops).toEqual(["metadata/listing.ts"]);
  });
});
