/**
 * A Framegate server under test: `framegate serve` as a child process with a fresh DATA_DIR (and
 * a throwaway PostgreSQL database when the bench has DATABASE_URL), reached through its admin API
 * for accounts and keys, and through its database (read-only) for the checks.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ChildServer, startFramegate } from "./processes.js";
import {
  createThrowawayDatabase,
  openPgReader,
  openSqliteReader,
  type StoreReader,
  type ThrowawayDatabase,
} from "./store-reader.js";

const ADMIN_TOKEN = randomBytes(24).toString("hex");

/** Environment of every Framegate child: only what is measured, nothing that throttles it. */
const BASE_ENV: Record<string, string> = {
  LOG_LEVEL: "warn",
  ADMIN_TOKEN,
  // Given, not generated into DATA_DIR: the PostgreSQL server warns when each process has its own.
  SIGNING_SECRET: randomBytes(32).toString("hex"),
  BOOTSTRAP_DEV_ACCOUNT: "false",
  RATE_LIMIT_CREATE_PER_MIN: "0",
  RATE_LIMIT_UPLOAD_PER_MIN: "0",
  RATE_LIMIT_READ_PER_MIN: "0",
  RATE_LIMIT_WRITE_PER_MIN: "0",
  // Each upload is stored: quotas would refuse the run's later uploads, not measure them.
  ACCOUNT_MAX_FILE_BYTES: String(2 ** 50),
  ACCOUNT_MAX_FILES: "10000000",
};

export interface Framegate {
  server: ChildServer;
  openReader(): Promise<StoreReader>;
  admin<T>(path: string, body: unknown): Promise<T>;
  newAccount(name: string, credits: number): Promise<{ accountId: string; apiKey: string }>;
  close(): Promise<void>;
}

export async function launchFramegate(
  label: string,
  env: Record<string, string>,
  pgAdminUrl: string | undefined,
  cpuProfDir: string | null,
  cpuProfIntervalUs?: number,
) {
  const dataDir = await mkdtemp(join(tmpdir(), `framegate-bench-${label}-`));
  let database: ThrowawayDatabase | undefined;
  let server: ChildServer | undefined;
  try {
    if (pgAdminUrl) database = await createThrowawayDatabase(pgAdminUrl, label.replace(/\W/g, "_"));
    server = await startFramegate(
      { ...BASE_ENV, DATA_DIR: dataDir, ...(database ? { DATABASE_URL: database.url } : {}), ...env },
      label,
      cpuProfDir,
      cpuProfIntervalUs,
    );
  } catch (error) {
    await database?.drop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  const running = server;
  const admin = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${running.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const framegate: Framegate = {
    server: running,
    openReader: () => (database ? openPgReader(database.url) : Promise.resolve(openSqliteReader(dataDir))),
    admin,
    newAccount: async (name, credits) => {
      const account = await admin<{ id: string }>("/admin/v1/accounts", { name, credits });
      const key = await admin<{ key: string }>(`/admin/v1/accounts/${account.id}/keys`, {});
      return { accountId: account.id, apiKey: key.key };
    },
    close: async () => {
      await running.stop();
      await database
        ?.drop()
        .catch((e) => process.stderr.write(`could not drop ${label}'s database: ${(e as Error).message}\n`));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return framegate;
}
