/**
 * A clean npm project outside the workspace with the packed tarballs installed, as a user would
 * install them: `npm run pack` into a temp directory, then `npm ci --offline` in another.
 *
 * Offline, npm can only take packages from its cache, and after `npm ci` the cache holds the
 * workspace's tarballs but no registry metadata (npm ci reads versions from the lockfile), so a
 * plain `npm install --offline` cannot resolve a range like "^3.12.0". The project therefore gets
 * a lockfile: the tarballs, plus the registry packages they need, each at the version and
 * integrity the workspace's package-lock.json has. The dependency tree still comes from the
 * packed manifests: a dependency a tarball does not declare is not installed.
 */
import type { SpawnOptions } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { type ProcessResult, runProcess } from "../../server/test/process-helpers.js";

const REPO_ROOT = resolve(import.meta.dirname, "../../..");

export type RunResult = ProcessResult;

/**
 * The environment for npm, npx and the CLI in the project: the caller's, without the npm_*
 * variables `npm test` exported (they describe the workspace, e.g. npm_config_workspace), and
 * without anything that could make npm ask a question or reach for the network.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const keep = new Set(["npm_config_cache", "npm_config_registry", "npm_config_userconfig"]);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_") || keep.has(name)),
  );
  return {
    ...env,
    CI: "true",
    npm_config_yes: "false",
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    npm_config_progress: "false",
    ...extra,
  };
}

/** Runs a command with no stdin, killed after `timeoutMs` (a hung npm fails the test instead of stalling it). */
export async function run(
  command: string,
  args: string[],
  opts: SpawnOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  const { timeoutMs = 120_000, ...spawnOpts } = opts;
  const result = await runProcess(command, args, { env: cleanEnv(), ...spawnOpts, timeoutMs });
  if (result.timedOut) {
    throw new Error(
      `${command} ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${result.stdout}${result.stderr}`,
    );
  }
  return result;
}

/** `npm run pack -- --out <dir>`: the tarball paths it printed. */
export async function packInto(dir: string): Promise<string[]> {
  const result = await run("npm", ["run", "pack", "--silent", "--", "--out", dir], {
    cwd: REPO_ROOT,
    timeoutMs: 300_000,
  });
  if (result.code !== 0) throw new Error(`npm run pack failed (${result.code}):\n${result.stderr}`);
  return result.stdout.split("\n").filter((line) => line.endsWith(".tgz"));
}

interface LockEntry {
  version?: string;
  integrity?: string;
  resolved?: string;
  link?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [field: string]: unknown;
}

export interface PackedManifest extends LockEntry {
  name: string;
  version: string;
}

/** The manifest inside a tarball (tar is on every CI image this runs on). */
export async function manifestOf(tarball: string): Promise<PackedManifest> {
  const result = await run("tar", ["-xzOf", tarball, "package/package.json"]);
  if (result.code !== 0) throw new Error(`cannot read package.json from ${tarball}: ${result.stderr}`);
  return JSON.parse(result.stdout) as PackedManifest;
}

/** Names of what a package needs installed: dependencies, optional ones and peers that are not optional. */
function needs(entry: LockEntry): string[] {
  const peers = Object.keys(entry.peerDependencies ?? {}).filter((n) => !entry.peerDependenciesMeta?.[n]?.optional);
  return [...Object.keys(entry.dependencies ?? {}), ...Object.keys(entry.optionalDependencies ?? {}), ...peers];
}

/**
 * Lockfile entries for the registry packages the manifests need, found in the workspace's lock the
 * way Node resolves a package: `<dir>/node_modules/<name>`, then each parent's, up to the root.
 * A workspace package lives at packages/<x> there and at node_modules/@framegate/<x> here.
 */
function registryEntries(
  manifests: PackedManifest[],
  lock: Record<string, LockEntry>,
  workspaceDirs: Map<string, string>,
): Record<string, LockEntry> {
  const packed = new Set(manifests.map((m) => m.name));
  const out: Record<string, LockEntry> = {};
  const missing: string[] = [];
  const visit = (fromLockDir: string, fromHereDir: string, entry: LockEntry) => {
    for (const name of needs(entry)) {
      if (packed.has(name)) continue;
      let lockDir = fromLockDir;
      let hereDir = fromHereDir;
      for (;;) {
        const candidate = lock[`${lockDir ? `${lockDir}/` : ""}node_modules/${name}`];
        if (candidate && !candidate.link) {
          const herePath = `${hereDir ? `${hereDir}/` : ""}node_modules/${name}`;
          if (!out[herePath]) {
            const { dev: _dev, devOptional: _devOptional, peer: _peer, ...rest } = candidate;
            out[herePath] = rest;
            visit(`${lockDir ? `${lockDir}/` : ""}node_modules/${name}`, herePath, candidate);
          }
          break;
        }
        if (lockDir === "") {
          if (!entry.optionalDependencies?.[name]) missing.push(`${name} (needed by ${fromHereDir || "the project"})`);
          break;
        }
        // Up one node_modules level (or from packages/<x> to the root).
        const up = lockDir.lastIndexOf("/node_modules/");
        lockDir = up >= 0 ? lockDir.slice(0, up) : "";
        const hereUp = hereDir.lastIndexOf("/node_modules/");
        hereDir = hereUp >= 0 ? hereDir.slice(0, hereUp) : "";
      }
    }
  };
  for (const m of manifests) {
    const dir = workspaceDirs.get(m.name);
    if (dir === undefined) throw new Error(`${m.name} is not a workspace package`);
    visit(dir, `node_modules/${m.name}`, m);
  }
  if (missing.length > 0) throw new Error(`not in the workspace's package-lock.json: ${missing.join(", ")}`);
  return out;
}

/**
 * Creates the project in `dir` (tarballs copied under it, referenced as file: dependencies) and
 * runs `npm ci --offline` there. Fails with npm's message if the cache lacks a package.
 */
export async function installPacked(dir: string, tarballs: string[]): Promise<void> {
  const rootLock = JSON.parse(readFileSync(join(REPO_ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  const workspaceDirs = new Map(
    Object.entries(rootLock.packages)
      .filter(([path, entry]) => path.startsWith("packages/") && typeof entry.name === "string")
      .map(([path, entry]) => [entry.name as string, path]),
  );
  mkdirSync(join(dir, "tarballs"), { recursive: true });
  const manifests: PackedManifest[] = [];
  const dependencies: Record<string, string> = {};
  const packages: Record<string, LockEntry> = {};
  for (const tarball of tarballs) {
    const bytes = readFileSync(tarball);
    const local = join("tarballs", basename(tarball));
    writeFileSync(join(dir, local), bytes);
    const m = await manifestOf(tarball);
    manifests.push(m);
    dependencies[m.name] = `file:${local}`;
    const { name: _name, scripts: _s, files: _f, exports: _e, main: _m, types: _t, ...meta } = m;
    packages[`node_modules/${m.name}`] = {
      ...meta,
      resolved: `file:${local}`,
      integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
    };
  }
  const name = "framegate-packed-check";
  writeFileSync(
    join(dir, "package.json"),
    `${JSON.stringify({ name, version: "1.0.0", private: true, type: "module", dependencies }, null, 2)}\n`,
  );
  const lock = {
    name,
    version: "1.0.0",
    lockfileVersion: 3,
    requires: true,
    packages: {
      "": { name, version: "1.0.0", dependencies },
      ...packages,
      ...registryEntries(manifests, rootLock.packages, workspaceDirs),
    },
  };
  writeFileSync(join(dir, "package-lock.json"), `${JSON.stringify(lock, null, 2)}\n`);
  const result = await run("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: dir });
  if (result.code !== 0) {
    const hint = /ENOTCACHED/.test(result.stderr)
      ? "\nA package is not in the npm cache: run `npm ci` in the repository first (it fills the cache)."
      : "";
    throw new Error(`npm ci --offline failed in ${dir} (exit ${result.code}):\n${result.stderr}${hint}`);
  }
}
