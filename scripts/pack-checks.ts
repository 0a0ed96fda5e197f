/**
 * The checks and rewrites of `npm run pack` (scripts/pack.ts), apart from its I/O so that a test
 * can hold each refusal to what it refuses.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, relative } from "node:path";

export type Exports = string | null | { [key: string]: Exports };
export interface Manifest {
  name: string;
  version: string;
  main?: string;
  types?: string;
  bin?: string | Record<string, string>;
  exports?: Exports;
  files?: string[];
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [field: string]: unknown;
}

export interface Workspace {
  dir: string;
  manifest: Manifest;
}

export function allDependencies(m: Manifest): Record<string, string> {
  return { ...m.optionalDependencies, ...m.peerDependencies, ...m.dependencies };
}

/** Ranges npm cannot resolve from a registry, and siblings pinned to a version that is not theirs. */
export function checkDependencyRanges(ws: Workspace, versions: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [name, range] of Object.entries(allDependencies(ws.manifest))) {
    const sibling = versions.get(name);
    if (sibling !== undefined && range !== sibling) {
      problems.push(
        `${ws.manifest.name}: ${name} must be pinned to "${sibling}" (the workspace's version), not "${range}"`,
      );
    } else if (range === "*" || /^(workspace|file|link):/.test(range)) {
      problems.push(`${ws.manifest.name}: ${name}@"${range}" cannot be installed from a registry`);
    }
  }
  return problems;
}

export function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

const BUILD_SUFFIXES = [".d.ts.map", ".d.ts", ".js.map", ".js"];

/** False for a dist/ file that tsc emitted from a src/*.ts that no longer exists. */
export function hasSource(packageDir: string, file: string): boolean {
  const rel = relative(join(packageDir, "dist"), file);
  const suffix = BUILD_SUFFIXES.find((s) => rel.endsWith(s));
  if (suffix === undefined || rel.startsWith("..")) return true;
  return existsSync(join(packageDir, "src", `${rel.slice(0, -suffix.length)}.ts`));
}

const BUILTINS = new Set(builtinModules);
/** import/export … from "x" and import "x" at the start of a line (tsc's output), import("x"), require("x"). */
const SPECIFIER =
  /^(?:(?:import|export)\s[^;]*?\bfrom\s*|import\s*)["']([^"'./][^"']*)["']|\b(?:import|require)\(\s*["']([^"'./][^"']*)["']\s*\)/gm;

/** Packages the built JavaScript imports (statically, dynamically or with require) but the manifest does not declare. */
export function undeclaredImports(ws: Workspace): string[] {
  const declared = allDependencies(ws.manifest);
  const missing = new Set<string>();
  for (const file of walk(join(ws.dir, "dist"))) {
    if (!file.endsWith(".js") || !hasSource(ws.dir, file)) continue;
    for (const match of readFileSync(file, "utf8").matchAll(SPECIFIER)) {
      const specifier = match[1] ?? match[2];
      if (specifier === undefined || specifier.startsWith("node:") || BUILTINS.has(specifier)) continue;
      const parts = specifier.split("/");
      const name = specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
      if (name !== ws.manifest.name && !(name in declared)) missing.add(`${name} (${relative(ws.dir, file)})`);
    }
  }
  return [...missing].map((m) => `${ws.manifest.name} imports ${m} but does not declare it`);
}

/** The export map without the workspace-only "source" condition. */
export function withoutSource(value: Exports): Exports {
  if (value === null || typeof value === "string") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([condition]) => condition !== "source")
      .map(([key, target]) => [key, withoutSource(target)]),
  );
}

export function publishManifest(m: Manifest): Manifest {
  const { scripts: _scripts, devDependencies: _dev, ...rest } = m;
  return m.exports === undefined ? rest : { ...rest, exports: withoutSource(m.exports) };
}

/** Every file the manifest points at: main, types, bin and each export target. */
export function entryPoints(m: Manifest): string[] {
  const targets: string[] = [];
  const collect = (value: Exports | undefined) => {
    if (typeof value === "string") targets.push(value);
    else if (value) for (const v of Object.values(value)) collect(v);
  };
  collect(m.exports);
  for (const field of [m.main, m.types]) if (field) targets.push(field);
  if (typeof m.bin === "string") targets.push(m.bin);
  else if (m.bin) targets.push(...Object.values(m.bin));
  return targets.map((t) => t.replace(/^\.\//, ""));
}
