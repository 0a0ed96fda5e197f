/** Accounts and API keys: the operator side (admin API, CLI) and key authentication. */
import { PostgresAdapter } from "kysely";
import { ApiError } from "../errors.js";
import { grantCredits, type LedgerSummary, ledgerSummary } from "../ledger/ledger.js";
import type { Db, Tx } from "../store/db.js";
import { newestFirst, resolveCursor } from "../store/pagination.js";
import type { Clock } from "../util/clock.js";
import { newId } from "../util/ids.js";
import type { CachedKey, KeyCache } from "./key-cache.js";
import { announceRevocation, externalWrites } from "./key-revocations.js";
import { ALL_SCOPES, generateApiKey, hashApiKey, knownScopes, looksLikeApiKey, type Scope } from "./keys.js";
import { effectiveQuotas, type QuotaOverrides, type Quotas } from "./quotas.js";

export interface Account {
  id: string;
  name: string;
  credits: number;
  /** This account's cap on running tasks; null = the server default (ACCOUNT_MAX_RUNNING_TASKS). */
  max_running_tasks: number | null;
  /** The cap in force: the override, else the default. */
  effective_max_running_tasks: number;
  /** Quotas (accounts/quotas.ts): the override (null = the server default) and the one in force. */
  max_webhook_endpoints: number | null;
  effective_max_webhook_endpoints: number;
  max_file_bytes: number | null;
  effective_max_file_bytes: number;
  max_files: number | null;
  effective_max_files: number;
  created_at: string;
  /** Set when the account was deleted (accounts/lifecycle.ts): its keys are revoked, it gets no new ones. */
  deleted_at: string | null;
}

/** What PATCH /admin/v1/accounts/{id} may change; a field left out stays, null = the default. */
export type AccountLimitChanges = Partial<{ max_running_tasks: number | null } & QuotaOverrides>;

export interface AccountLimits {
  /** ACCOUNT_MAX_RUNNING_TASKS. */
  defaultMaxRunningTasks: number;
  /** ACCOUNT_MAX_WEBHOOK_ENDPOINTS, ACCOUNT_MAX_FILE_BYTES, ACCOUNT_MAX_FILES. */
  quotas: Quotas;
  /** Called after an account's cap changed (a raised cap lets waiting tasks start now). */
  changed?(accountId: string): Promise<void>;
  /** Called after an operator grant (positive) or debit (negative) committed (metrics). */
  granted?(amount: number): void;
}

type AccountRow = {
  id: string;
  name: string;
  balance: number;
  max_running_tasks: number | null;
  created_at: string;
  deleted_at: string | null;
} & QuotaOverrides;

const ACCOUNT_COLUMNS = [
  "id",
  "name",
  "balance",
  "max_running_tasks",
  "max_webhook_endpoints",
  "max_file_bytes",
  "max_files",
  "created_at",
  "deleted_at",
] as const;

export interface ApiKeyInfo {
  id: string;
  account_id: string;
  name: string | null;
  prefix: string;
  scopes: Scope[];
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface AuthenticatedKey {
  keyId: string;
  accountId: string;
  scopes: ReadonlySet<Scope>;
}

type KeyRow = {
  id: string;
  account_id: string;
  name: string | null;
  prefix: string;
  scopes: string;
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
};

const KEY_COLUMNS = ["id", "account_id", "name", "prefix", "scopes", "expires_at", "revoked_at", "created_at"] as const;

function toKeyInfo(row: KeyRow): ApiKeyInfo {
  return {
    id: row.id,
    account_id: row.account_id,
    name: row.name,
    prefix: row.prefix,
    scopes: knownScopes(row.scopes),
    expires_at: row.expires_at,
    revoked_at: row.revoked_at,
    created_at: row.created_at,
  };
}

/**
 * SQLite: how often an API process asks whether another connection (the CLI) has committed, which
 * empties its key cache. Asking on every request was a twentieth of a keyed GET; at most every
 * 20 ms it costs nothing, and a revocation made beside the server applies within that time.
 */
export const EXTERNAL_WRITES_CHECK_MS = 20;

/** not_found for a missing account, and a clear not_found for a deleted one: it gets no new `what`. */
async function assertNotDeleted(trx: Tx, accountId: string, what: string): Promise<void> {
  // Locks the account's row (FOR UPDATE on PostgreSQL; SQLite runs one writer at a time), so a
  // delete cannot commit between this check and the caller's write and miss what it adds.
  let q = trx.selectFrom("accounts").select("deleted_at").where("id", "=", accountId);
  if (trx.getExecutor().adapter instanceof PostgresAdapter) q = q.forUpdate();
  const account = await q.executeTakeFirst();
  if (!account) throw new ApiError("not_found", "Account not found.");
  if (account.deleted_at) {
    throw new ApiError(
      "not_found",
      `Account ${accountId} was deleted at ${account.deleted_at}; it gets no new ${what}.`,
    );
  }
}

export class AccountService {
  /** When commits by other connections were last looked for (performance.now()). */
  private writesCheckedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly limits: AccountLimits,
    /** API-key lookups cached in this process (key-cache.ts); absent: every request reads the row. */
    private readonly keyCache?: KeyCache,
  ) {}

  private toAccount(row: AccountRow): Account {
    const quotas = effectiveQuotas(row, this.limits.quotas);
    return {
      id: row.id,
      name: row.name,
      credits: row.balance,
      max_running_tasks: row.max_running_tasks,
      effective_max_running_tasks: row.max_running_tasks ?? this.limits.defaultMaxRunningTasks,
      max_webhook_endpoints: row.max_webhook_endpoints,
      effective_max_webhook_endpoints: quotas.maxWebhookEndpoints,
      max_file_bytes: row.max_file_bytes,
      effective_max_file_bytes: quotas.maxFileBytes,
      max_files: row.max_files,
      effective_max_files: quotas.maxFiles,
      created_at: row.created_at,
      deleted_at: row.deleted_at,
    };
  }

  async createAccount(input: { name: string; credits: number }): Promise<Account> {
    const id = newId("acct");
    const createdAt = this.clock.now().toISOString();
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto("accounts").values({ id, name: input.name, balance: 0, created_at: createdAt }).execute();
      if (input.credits > 0) {
        await grantCredits(trx, this.clock, { accountId: id, amount: input.credits, reason: "initial grant" });
      }
    });
    if (input.credits > 0) this.limits.granted?.(input.credits);
    return this.toAccount({
      id,
      name: input.name,
      balance: input.credits,
      max_running_tasks: null,
      max_webhook_endpoints: null,
      max_file_bytes: null,
      max_files: null,
      created_at: createdAt,
      deleted_at: null,
    });
  }

  /** A page of accounts, newest first, deleted ones included (GET /admin/v1/accounts). */
  async listAccountsPage(query: {
    limit: number;
    startingAfter?: string;
  }): Promise<{ data: Account[]; has_more: boolean }> {
    const cursor = await resolveCursor(query.startingAfter, (id) =>
      this.db.selectFrom("accounts").select(["created_at", "id"]).where("id", "=", id).executeTakeFirst(),
    );
    const page = await newestFirst<AccountRow>(this.db.selectFrom("accounts").selectAll(), cursor, query.limit);
    return { data: page.data.map((r) => this.toAccount(r)), has_more: page.has_more };
  }

  /** Every account, oldest first (`framegate accounts list`, which reads the store directly). */
  async listAccounts(): Promise<Account[]> {
    const rows = await this.db.selectFrom("accounts").selectAll().orderBy("created_at").orderBy("id").execute();
    return rows.map((r) => this.toAccount(r));
  }

  async getAccount(id: string): Promise<(Account & { ledger: LedgerSummary }) | undefined> {
    // One snapshot for the balance and the ledger totals, so they agree while tasks settle
    // (repeatable read on PostgreSQL; a SQLite transaction is one snapshot already).
    const { row, ledger } = await this.db
      .transaction()
      .setIsolationLevel("repeatable read")
      .execute(async (trx) => ({
        row: await trx.selectFrom("accounts").selectAll().where("id", "=", id).executeTakeFirst(),
        ledger: await ledgerSummary(trx, id),
      }));
    if (!row) return undefined;
    return { ...this.toAccount(row), ledger: ledger as LedgerSummary };
  }

  /**
   * Sets the account's cap on running tasks and its quotas (null: back to the default; fields
   * left out stay); undefined when no such account.
   */
  async updateLimits(accountId: string, changes: AccountLimitChanges): Promise<Account | undefined> {
    const row = await this.db
      .updateTable("accounts")
      .set(changes)
      .where("id", "=", accountId)
      .returning([...ACCOUNT_COLUMNS])
      .executeTakeFirst();
    if (!row) return undefined;
    if (changes.max_running_tasks !== undefined) await this.limits.changed?.(accountId);
    return this.toAccount(row);
  }

  async grant(accountId: string, amount: number, reason: string | null): Promise<number> {
    const balance = await this.db.transaction().execute(async (trx) => {
      await assertNotDeleted(trx, accountId, "credits");
      return grantCredits(trx, this.clock, { accountId, amount, reason });
    });
    this.limits.granted?.(amount);
    return balance;
  }

  async createKey(
    accountId: string,
    input: { scopes?: Scope[]; expiresAt?: string | null; name?: string | null } = {},
  ): Promise<ApiKeyInfo & { key: string }> {
    const { key, prefix, hash } = generateApiKey();
    const row: KeyRow = {
      id: newId("key"),
      account_id: accountId,
      name: input.name ?? null,
      prefix,
      scopes: JSON.stringify(input.scopes ?? [...ALL_SCOPES]),
      expires_at: input.expiresAt ?? null,
      revoked_at: null,
      created_at: this.clock.now().toISOString(),
    };
    await this.db.transaction().execute(async (trx) => {
      await assertNotDeleted(trx, accountId, "keys");
      await trx
        .insertInto("api_keys")
        .values({ ...row, key_hash: hash })
        .execute();
    });
    return { ...toKeyInfo(row), key };
  }

  /** One of the account's keys (revoked and expired ones too); undefined for another account's. */
  async getKey(accountId: string, keyId: string): Promise<ApiKeyInfo | undefined> {
    const row = await this.db
      .selectFrom("api_keys")
      .select(KEY_COLUMNS)
      .where("id", "=", keyId)
      .where("account_id", "=", accountId)
      .executeTakeFirst();
    return row ? toKeyInfo(row) : undefined;
  }

  /** A page of the account's keys, newest first, revoked and expired ones included. */
  async listKeysPage(
    accountId: string,
    query: { limit: number; startingAfter?: string },
  ): Promise<{ data: ApiKeyInfo[]; has_more: boolean }> {
    const cursor = await resolveCursor(query.startingAfter, (id) =>
      this.db
        .selectFrom("api_keys")
        .select(["created_at", "id"])
        .where("id", "=", id)
        .where("account_id", "=", accountId)
        .executeTakeFirst(),
    );
    const q = this.db.selectFrom("api_keys").select(KEY_COLUMNS).where("account_id", "=", accountId);
    const page = await newestFirst<KeyRow>(q, cursor, query.limit);
    return { data: page.data.map(toKeyInfo), has_more: page.has_more };
  }

  async listKeys(accountId: string): Promise<ApiKeyInfo[]> {
    const rows = await this.db
      .selectFrom("api_keys")
      .select(["id", "account_id", "name", "prefix", "scopes", "expires_at", "revoked_at", "created_at"])
      .where("account_id", "=", accountId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
    return rows.map(toKeyInfo);
  }

  /**
   * Revokes a key; revoking twice keeps the first revocation time. This process forgets the key
   * at once; on PostgreSQL the other processes hear it at commit (NOTIFY), and in any case they
   * stop trusting their cached copy within KEY_CACHE_TTL_MS. With `accountId` (the public API)
   * only that account's key is touched: another account's is undefined, as if it did not exist.
   */
  async revokeKey(keyId: string, accountId?: string): Promise<ApiKeyInfo | undefined> {
    const row = await this.db.transaction().execute(async (trx) => {
      let update = trx
        .updateTable("api_keys")
        .set({ revoked_at: this.clock.now().toISOString() })
        .where("id", "=", keyId)
        .where("revoked_at", "is", null);
      if (accountId !== undefined) update = update.where("account_id", "=", accountId);
      await update.execute();
      let select = trx.selectFrom("api_keys").select(KEY_COLUMNS).where("id", "=", keyId);
      if (accountId !== undefined) select = select.where("account_id", "=", accountId);
      const found = await select.executeTakeFirst();
      if (found) await announceRevocation(trx, keyId);
      return found;
    });
    this.keyCache?.invalidate(keyId);
    return row ? toKeyInfo(row) : undefined;
  }

  /** Drops keys from this process's cache (revoked elsewhere in bulk: accounts/lifecycle.ts). */
  forgetCachedKeys(keyIds: readonly string[]): void {
    for (const id of keyIds) this.keyCache?.invalidate(id);
  }

  /** Resolves a presented secret to its key, or throws the matching api_key_* error. */
  async authenticate(secret: string): Promise<AuthenticatedKey> {
    if (!looksLikeApiKey(secret)) {
      throw new ApiError("api_key_invalid", "The API key is malformed. Keys look like rvya_sk_….");
    }
    return this.authenticateHash(hashApiKey(secret));
  }

  /**
   * The common case of `authenticate`, without a promise: a well-formed secret whose key this
   * process's cache holds, fresh, and neither revoked nor expired, when no check for other
   * processes' writes is due. Undefined otherwise, and then `authenticate` decides (and throws the
   * matching error). Every keyed request asks this first (issue 13).
   */
  cachedKey(secret: string): AuthenticatedKey | undefined {
    if (!this.keyCache?.enabled || this.externalWritesCheckDue() || !looksLikeApiKey(secret)) return undefined;
    const key = this.keyCache.get(hashApiKey(secret));
    return key && this.usable(key) ? { keyId: key.keyId, accountId: key.accountId, scopes: key.scopes } : undefined;
  }

  private externalWritesCheckDue(): boolean {
    return performance.now() - this.writesCheckedAt >= EXTERNAL_WRITES_CHECK_MS;
  }

  private usable(key: CachedKey): boolean {
    return !key.revokedAt && !(key.expiresAt && key.expiresAt <= this.clock.now().toISOString());
  }

  /**
   * Resolves a key by its stored hash, through the same cache, revocation and expiry checks as a
   * presented secret: a console session (console/sessions.ts) keeps only the hash of the key it
   * was made from, and must end the moment that key is revoked or expires.
   */
  async authenticateHash(hash: string): Promise<AuthenticatedKey> {
    if (this.keyCache?.enabled && this.externalWritesCheckDue()) {
      this.writesCheckedAt = performance.now();
      const generation = await externalWrites(this.db);
      if (generation !== undefined) this.keyCache.syncGeneration(generation);
    }
    let key = this.keyCache?.get(hash);
    if (!key) {
      const row = await this.db
        .selectFrom("api_keys")
        .select(["id", "account_id", "scopes", "expires_at", "revoked_at"])
        .where("key_hash", "=", hash)
        .executeTakeFirst();
      if (!row) throw new ApiError("api_key_invalid", "The API key could not be verified.");
      key = {
        keyId: row.id,
        accountId: row.account_id,
        scopes: new Set(knownScopes(row.scopes)),
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
      };
      this.keyCache?.set(hash, key);
    }
    if (!this.usable(key)) {
      throw key.revokedAt
        ? new ApiError("api_key_revoked", "The API key has been revoked.")
        : new ApiError("api_key_expired", "The API key has expired.");
    }
    return { keyId: key.keyId, accountId: key.accountId, scopes: key.scopes };
  }
}
