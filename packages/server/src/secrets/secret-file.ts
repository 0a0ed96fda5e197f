/**
 * A secret kept in a file of its own: mode 0600 in a 0700 directory, created once and never
 * rewritten. Creation is atomic and exclusive at the same time: the value is written to a
 * private temp file, then hard-linked to its final name, which fails if the name exists. So a
 * reader never sees a half-written secret, and of several processes creating it at once exactly
 * one wins; the others read the winner's value.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The secret in `path`, or undefined when the file does not exist. */
export async function readSecretFile(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, "utf8")).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Creates `path` holding `value` unless it exists; returns the value the file holds then (ours,
 * or the one another process or an earlier start wrote).
 */
export async function createSecretFileOnce(path: string, value: string): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing directory as it is, and its mode is subject to the umask.
  await chmod(dir, 0o700);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(temp, `${value}\n`, { mode: 0o600, flag: "wx" });
    await link(temp, path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } finally {
    await rm(temp, { force: true });
  }
  const stored = await readSecretFile(path);
  if (stored === undefined) throw new Error(`${path} disappeared while it was being created`);
  return stored;
}

/** True when anyone but the owner may read or write the file. */
export async function isExposed(path: string): Promise<boolean> {
  return ((await stat(path)).mode & 0o077) !== 0;
}
