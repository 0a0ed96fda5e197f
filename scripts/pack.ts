/**
 * `npm run pack [-- --out <dir>] [-- --skip-build]`: builds the workspaces and writes installable tarballs of
 * @framegate/contract, @framegate/sdk, @framegate/server and @framegate/cli into dist-packages/
 * (or <dir>), printing one absolute tarball path per line on stdout (everything else goes to stderr).
 *
 * Each package is packed from a staged copy rather than from its workspace folder, so that:
 *   - the manifest that ships has no "source" export condition. Inside the monorepo that condition
 *     points vitest and tsx at src/*.ts; a consumer whose own tooling sets a "source" condition
 *     (a common monorepo convention) would otherwise compile our sources under its tsconfig.
 *     src/ still ships, so the source maps and declaration maps in dist/ resolve.
 *   - scripts and devDependencies stay behind (they only make sense in this repository);
 *   - build outputs whose source file is gone (tsc -b never deletes them) are left out.
 *
 * Before packing it refuses a manifest that npm could not install from a registry: a dependency
 * range such as "*" or "workspace:", a sibling pinned to another version than the sibling's own,
 * or a package imported by the built code that the manifest does not declare. After packing it
 * checks that every main/types/bin/exports target is in the tarball.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  checkDependencyRanges,
  entryPoints,
  hasSource,
  type Manifest,
  publishManifest,
  undeclaredImports,
  type Workspace,
} from "./pack-checks.js";

const ROOT = resolve(import.meta.dirname, "..");
/** Workspace folders under packages/, dependencies first. */
const PACKAGES = ["contract", "sdk", "server", "cli"] as const;

class PackError extends Error {}

function readManifest(dir: string): Manifest {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Manifest;
}

/** Runs a command with its output on our stderr, so stdout carries only the tarball paths. */
function run(command: string, args: string[], cwd: string, captureStdout = false): string {
  const result = spawnSync(command, args, {
    cwd,
    stdio: ["ignore", captureStdout ? "pipe" : 2, 2],
    encoding: "utf8",
    // npm is npm.cmd on Windows; a shell finds it there.
    shell: process.platform === "win32",
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new PackError(`${command} ${args.join(" ")} exited with ${result.status}`);
  return result.stdout ?? "";
}

/** Copies what `files` names (npm applies its patterns again when packing), skipping stale build outputs. */
function stage(ws: Workspace, into: string): string {
  const target = join(into, ws.dir.split(/[\\/]/).at(-1) ?? ws.manifest.name);
  mkdirSync(target);
  const entries = (ws.manifest.files ?? []).filter((f) => !f.startsWith("!"));
  for (const entry of new Set([...entries, "README.md", "LICENSE"])) {
    const from = join(ws.dir, entry);
    if (!existsSync(from)) {
      if (entries.includes(entry))
        throw new PackError(`${ws.manifest.name}: "files" names ${entry}, which does not exist`);
      continue;
    }
    cpSync(from, join(target, entry), { recursive: true, filter: (file) => hasSource(ws.dir, file) });
  }
  writeFileSync(join(target, "package.json"), `${JSON.stringify(publishManifest(ws.manifest), null, 2)}\n`);
  return target;
}

interface PackResult {
  name: string;
  filename: string;
  files: { path: string }[];
}

function main(): void {
  const { values } = parseArgs({ options: { out: { type: "string" }, "skip-build": { type: "boolean" } } });
  const out = resolve(values.out ?? join(ROOT, "dist-packages"));

  if (!values["skip-build"]) {
    process.stderr.write("building the workspaces (npm run build)\n");
    run("npm", ["run", "build", "--silent"], ROOT);
  }

  const workspaces: Workspace[] = PACKAGES.map((name) => {
    const dir = join(ROOT, "packages", name);
    return { dir, manifest: readManifest(dir) };
  });
  const versions = new Map(workspaces.map((ws) => [ws.manifest.name, ws.manifest.version]));
  const problems = workspaces.flatMap((ws) => [...checkDependencyRanges(ws, versions), ...undeclaredImports(ws)]);
  if (problems.length > 0) throw new PackError(`not packable:\n  ${problems.join("\n  ")}`);

  const staging = mkdtempSync(join(tmpdir(), "framegate-pack-"));
  try {
    const staged = workspaces.map((ws) => stage(ws, staging));
    mkdirSync(out, { recursive: true });
    const json = run(
      "npm",
      ["pack", ...staged, "--pack-destination", out, "--json", "--loglevel=warn", "--ignore-scripts"],
      staging,
      true,
    );
    const results = JSON.parse(json) as PackResult[];
    const lacking = results.flatMap((result) => {
      const ws = workspaces.find((w) => w.manifest.name === result.name);
      const shipped = new Set(result.files.map((f) => f.path));
      const absent = ws ? entryPoints(publishManifest(ws.manifest)).filter((t) => !shipped.has(t)) : [];
      return absent.length > 0 ? [`${result.name}: the tarball lacks ${absent.join(", ")}`] : [];
    });
    if (lacking.length > 0) {
      // A tarball that cannot work must not be left where someone would install it.
      for (const result of results) rmSync(join(out, result.filename), { force: true });
      throw new PackError(lacking.join("\n"));
    }
    for (const result of results) process.stdout.write(`${join(out, result.filename)}\n`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  process.stderr.write(`pack: ${error instanceof PackError ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
