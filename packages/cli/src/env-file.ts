/**
 * Settings from a `.env` file in the working directory, for every command: the server commands
 * (serve, api, worker, migrate, accounts, keys, credits grant) read their configuration from it,
 * and the API commands their FRAMEGATE_BASE_URL and FRAMEGATE_API_KEY. The real environment
 * wins: a variable it defines (even as an empty string) is never replaced by the file's.
 *
 * Values are parsed by Node's own parser (util.parseEnv: `NAME=value`, `export NAME=value`,
 * `#` comments, quoted values that may span lines). That parser skips a line it cannot read and
 * folds it into the next name, so each line is checked first, and a line that is not
 * `NAME=value` stops the command with the file and line rather than misconfiguring it quietly.
 *
 * FRAMEGATE_ENV_FILE (from the real environment only) names another file, which must then
 * exist, or is `none` to read no file: the test suite sets it, so a developer's .env in the
 * repository never reaches the servers and commands its tests start.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseEnv } from "node:util";

export class EnvFileError extends Error {
  override name = "EnvFileError";
}

const ASSIGNMENT = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=(.*)$/;
const QUOTES = new Set(['"', "'", "`"]);

/** Throws EnvFileError naming the first line that is not a comment, a blank or `NAME=value`. */
export function checkEnvSyntax(text: string, path: string): void {
  const lines = text.split(/\r?\n/);
  // The quote of a value still open on an earlier line, and where it opened.
  let open: { quote: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    if (open) {
      if (raw.includes(open.quote)) open = undefined;
      return;
    }
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = ASSIGNMENT.exec(line);
    if (!match) {
      throw new EnvFileError(
        `${path}, line ${lineNo}: expected NAME=value (or a # comment), found "${line.slice(0, 60)}"`,
      );
    }
    const value = (match[1] as string).trim();
    const quote = value[0];
    if (quote && QUOTES.has(quote) && !value.slice(1).includes(quote)) open = { quote, line: lineNo };
  });
  if (open) throw new EnvFileError(`${path}, line ${open.line}: the value's ${open.quote} quote is never closed`);
}

/**
 * Reads the file (FRAMEGATE_ENV_FILE, else .env in the working directory) into `env` for the
 * names `env` does not define. Returns the names it set; nothing when there is no such file.
 */
export function loadEnvFile(
  env: Record<string, string | undefined> = process.env,
  defaultPath: string = resolve(".env"),
): string[] {
  const chosen = env.FRAMEGATE_ENV_FILE?.trim();
  if (chosen === "none") return [];
  const file = chosen ? resolve(chosen) : defaultPath;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // The default file is optional; one named on purpose is not.
    if (code === "ENOENT" && !chosen) return [];
    throw new EnvFileError(`cannot read ${file}: ${code ?? (error as Error).message}`);
  }
  checkEnvSyntax(text, file);
  const applied: string[] = [];
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (value === undefined || Object.hasOwn(env, name)) continue;
    env[name] = value;
    applied.push(name);
  }
  return applied;
}
