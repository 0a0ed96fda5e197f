/** What `npm run pack` refuses and how it rewrites a manifest (scripts/pack-checks.ts), without packing. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  checkDependencyRanges,
  entryPoints,
  hasSource,
  type Manifest,
  publishManifest,
  undeclaredImports,
} from "../../../scripts/pack-checks.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A package folder with these files (path → content). */
function packageDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "framegate-pack-checks-"));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const manifest = (fields: Partial<Manifest> = {}): Manifest => ({ name: "@framegate/x", version: "0.1.0", ...fields });

describe("dependency ranges", () => {
  const versions = new Map([
    ["@framegate/sdk", "0.1.0"],
    ["@framegate/server", "0.1.0"],
  ]);

  it("accepts siblings at their exact version and ordinary registry ranges", () => {
    const m = manifest({
      dependencies: { "@framegate/sdk": "0.1.0", commander: "^14.0.3" },
      peerDependencies: { "@framegate/server": "0.1.0" },
    });
    expect(checkDependencyRanges({ dir: "/x", manifest: m }, versions)).toEqual([]);
  });

  it("refuses what a registry cannot install and siblings pinned to another version", () => {
    const m = manifest({
      dependencies: { "@framegate/sdk": "*", "left-pad": "*", other: "workspace:^" },
      peerDependencies: { "@framegate/server": "^0.1.0" },
    });
    const problems = checkDependencyRanges({ dir: "/x", manifest: m }, versions);
    expect(problems).toHaveLength(4);
    expect(problems.join("\n")).toMatch(/@framegate\/sdk must be pinned to "0.1.0".*not "\*"/);
    expect(problems.join("\n")).toMatch(/@framegate\/server must be pinned to "0.1.0".*not "\^0.1.0"/);
    expect(problems.join("\n")).toContain('left-pad@"*" cannot be installed from a registry');
    expect(problems.join("\n")).toContain('other@"workspace:^" cannot be installed from a registry');
  });
});

describe("undeclared imports", () => {
  it("finds packages the built code loads but the manifest does not declare", () => {
    const dir = packageDir({
      "src/a.ts": "",
      "dist/a.js": [
        'import { pad } from "left-pad";',
        'import { readFile } from "node:fs/promises";',
        'import path from "path";',
        'import { b } from "./b.js";',
        'export { c } from "@scope/declared/sub";',
        'const chalk = await import("chalk");',
        'const Database = require("better-sqlite3");',
        // SQL in a string is not an import.
        "const sql = \"select 1 where mode is distinct from 'unsafe_dedupe'\";",
      ].join("\n"),
      // A stale output (its source is gone) is not shipped, so its imports do not count.
      "dist/gone.js": 'import "stale-only";',
    });
    const m = manifest({ dependencies: { "@scope/declared": "^1.0.0" }, peerDependencies: { chalk: "^5.0.0" } });
    const problems = undeclaredImports({ dir, manifest: m });
    expect(problems).toEqual([
      "@framegate/x imports left-pad (dist/a.js) but does not declare it",
      "@framegate/x imports better-sqlite3 (dist/a.js) but does not declare it",
    ]);
  });
});

describe("the packed manifest", () => {
  it("drops the source condition at every level, scripts and devDependencies, and keeps the rest", () => {
    const m = manifest({
      main: "./dist/index.js",
      exports: {
        ".": { source: "./src/index.ts", types: "./dist/index.d.ts", default: "./dist/index.js" },
        "./sub": { node: { source: "./src/sub.ts", default: "./dist/sub.js" } },
        "./package.json": "./package.json",
      },
      scripts: { generate: "tsx scripts/generate.ts" },
      devDependencies: { vitest: "^4.0.0" },
      dependencies: { zod: "^4.0.0" },
    });
    expect(publishManifest(m)).toEqual({
      name: "@framegate/x",
      version: "0.1.0",
      main: "./dist/index.js",
      exports: {
        ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
        "./sub": { node: { default: "./dist/sub.js" } },
        "./package.json": "./package.json",
      },
      dependencies: { zod: "^4.0.0" },
    });
  });

  it("lists every file the manifest points at, so a tarball without one is refused", () => {
    const m = manifest({
      main: "./dist/index.js",
      types: "./dist/index.d.ts",
      bin: { framegate: "./bin/framegate.js" },
      exports: { ".": { types: "./dist/index.d.ts", default: "./dist/index.js" } },
    });
    expect(new Set(entryPoints(m))).toEqual(new Set(["dist/index.js", "dist/index.d.ts", "bin/framegate.js"]));
  });

  it("ships a build output only while its source exists", () => {
    const dir = packageDir({ "src/lib/x.ts": "", "dist/lib/x.js": "", "dist/lib/old.js": "" });
    for (const suffix of [".js", ".js.map", ".d.ts", ".d.ts.map"]) {
      expect(hasSource(dir, join(dir, `dist/lib/x${suffix}`)), suffix).toBe(true);
      expect(hasSource(dir, join(dir, `dist/lib/old${suffix}`)), suffix).toBe(false);
    }
    // Other files (assets) and files outside dist/ are not build outputs.
    expect(hasSource(dir, join(dir, "dist/assets/logo.svg"))).toBe(true);
    expect(hasSource(dir, join(dir, "bin/framegate.js"))).toBe(true);
  });
});
