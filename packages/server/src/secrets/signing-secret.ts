/**
 * The signing secret keys the HMACs of media URLs, upstream callback tokens and duration tokens,
 * and (derived) the key that encrypts webhook signing secrets at rest. It must therefore not sit
 * beside what it protects: a copy of the database alone must not give it away.
 *
 * It comes from SIGNING_SECRET, or else from DATA_DIR/secrets/signing_secret, generated on the
 * first start. Installs from before issue #12 kept the generated secret in the database
 * (settings.signing_secret); a start moves it to the file, and deletes the row only once the
 * same value is safely elsewhere (read back from the file, or equal to SIGNING_SECRET), so URLs
 * and webhook secrets issued under it stay valid.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "pino";
import { ConfigError } from "../config.js";
import type { Db } from "../store/db.js";
import { deleteSetting, getSetting } from "../store/settings.js";
import { createSecretFileOnce, isExposed, readSecretFile } from "./secret-file.js";

/** Where older versions kept the generated secret. */
export const LEGACY_SETTING = "signing_secret";
/** As config.ts demands of SIGNING_SECRET. */
const MIN_LENGTH = 32;

export function signingSecretPath(dataDir: string): string {
  return join(dataDir, "secrets", "signing_secret");
}

export async function resolveSigningSecret(opts: {
  envSecret: string | undefined;
  dataDir: string;
  db: Db;
  log: Logger;
}): Promise<string> {
  const { envSecret, dataDir, db, log } = opts;
  const path = signingSecretPath(dataDir);
  const legacy = await getSetting(db, LEGACY_SETTING);
  if (envSecret !== undefined) {
    if (legacy !== undefined) await retireLegacySecret(db, log, path, legacy, envSecret);
    return envSecret;
  }
  // An upgraded install keeps its secret: the database's value becomes the file's.
  const secret = (await readSecretFile(path)) ?? (await createSecretFileOnce(path, legacy ?? generateSecret()));
  if (secret.length < MIN_LENGTH) {
    throw new ConfigError(
      `Invalid configuration:\n  ${path}: holds fewer than ${MIN_LENGTH} characters; restore it from a backup (signed URLs and webhook secrets depend on it) or set SIGNING_SECRET`,
    );
  }
  if (await isExposed(path)) {
    log.warn({ path }, "the signing secret file is readable by other users: chmod 600 it");
  }
  if (legacy !== undefined) await retireLegacySecret(db, log, path, legacy, secret);
  return secret;
}

function generateSecret(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * Deletes the database's copy of the secret once its value is kept elsewhere: it is the secret in
 * use, or the secret file holds it (written now if there was none, for a later start without
 * SIGNING_SECRET). A row that matches neither is left, with a warning, since it may be the only
 * copy of a secret something still depends on.
 */
async function retireLegacySecret(db: Db, log: Logger, path: string, legacy: string, inUse: string): Promise<void> {
  const kept =
    legacy === inUse || ((await readSecretFile(path)) ?? (await createSecretFileOnce(path, legacy))) === legacy;
  if (!kept) {
    log.warn(
      { path },
      "settings.signing_secret in the database matches neither the signing secret in use nor the secret file; left in place: delete it once no signed URL or webhook secret depends on it",
    );
    return;
  }
  await deleteSetting(db, LEGACY_SETTING, legacy);
  log.info({ path }, "signing secret removed from the database");
}
