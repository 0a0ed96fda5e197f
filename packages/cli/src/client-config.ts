/**
 * Where the API commands find their server and key: flags, then the environment
 * (FRAMEGATE_BASE_URL, FRAMEGATE_API_KEY), then the config file `framegate login` writes, then
 * the default local server. The file lives at $FRAMEGATE_CONFIG, else
 * $XDG_CONFIG_HOME/framegate/config.json, else ~/.config/framegate/config.json, with mode 0600.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { CliError } from "./output.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8787";

export interface ConfigFile {
  baseUrl?: string;
  apiKey?: string;
}

export type Source = "flag" | "env" | "config" | "default" | "none";

export interface ResolvedConfig {
  baseUrl: string;
  apiKey: string | undefined;
  sources: { baseUrl: Source; apiKey: Source };
  configPath: string;
}

type Env = Record<string, string | undefined>;

const nonEmpty = (value: string | undefined) => (value?.trim() ? value.trim() : undefined);

export function configPath(env: Env = process.env): string {
  const explicit = nonEmpty(env.FRAMEGATE_CONFIG);
  if (explicit) return explicit;
  const base = nonEmpty(env.XDG_CONFIG_HOME) ?? join(homedir(), ".config");
  return join(base, "framegate", "config.json");
}

/** The config file's contents; {} when it does not exist. A file that is not valid JSON is an error. */
export async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError("config_invalid", `cannot read ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError("config_invalid", `${path} is not valid JSON (run framegate login again, or fix it)`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new CliError("config_invalid", `${path} must hold a JSON object`);
  }
  const { baseUrl, apiKey } = parsed as Record<string, unknown>;
  return {
    ...(typeof baseUrl === "string" && baseUrl ? { baseUrl } : {}),
    ...(typeof apiKey === "string" && apiKey ? { apiKey } : {}),
  };
}

/** Writes the file atomically (temp file + rename) with mode 0600, its directory with 0700. */
export async function writeConfigFile(path: string, config: ConfigFile): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.config.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
  await chmod(path, 0o600);
}

export function normalizeBaseUrl(raw: string, from: string): string {
  const value = raw.trim().replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError("invalid_argument", `${from} must be an http(s) URL, e.g. ${DEFAULT_BASE_URL} (got "${raw}")`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError("invalid_argument", `${from} must be an http(s) URL (got "${raw}")`);
  }
  return value.replace(/\/api\/v1$/, "");
}

/** flags > env > config file > default. */
export async function resolveConfig(flags: { baseUrl?: string; apiKey?: string }, env: Env = process.env) {
  const path = configPath(env);
  const file = await readConfigFile(path);
  const pick = (flag: string | undefined, envName: string, fromFile: string | undefined) => {
    const f = nonEmpty(flag);
    if (f)
      return { value: f, source: "flag" as const, from: envName === "FRAMEGATE_API_KEY" ? "--api-key" : "--base-url" };
    const e = nonEmpty(env[envName]);
    if (e) return { value: e, source: "env" as const, from: envName };
    if (fromFile) return { value: fromFile, source: "config" as const, from: `baseUrl in ${path}` };
    return undefined;
  };
  const base = pick(flags.baseUrl, "FRAMEGATE_BASE_URL", file.baseUrl);
  const key = pick(flags.apiKey, "FRAMEGATE_API_KEY", file.apiKey);
  const resolved: ResolvedConfig = {
    baseUrl: base ? normalizeBaseUrl(base.value, base.from) : DEFAULT_BASE_URL,
    apiKey: key?.value,
    sources: { baseUrl: base?.source ?? "default", apiKey: key?.source ?? "none" },
    configPath: path,
  };
  return resolved;
}

/** What may be shown of a key: its first 12 characters (`rvya_sk_` + 4, the server's prefix), at most half of it. */
export function maskKey(key: string): string {
  return `${key.slice(0, Math.min(12, Math.floor(key.length / 2)))}…`;
}
