/**
 * The end of an account's life (issue 18): exporting everything it holds, and deleting it.
 *
 * Deleting is two steps, so it can be finished by whoever comes next when one step is cut short:
 *
 * 1. close (one transaction, atomic): accounts.deleted_at is set; its API keys are revoked (and
 *    the revocation announced as any revocation is: NOTIFY on PostgreSQL, data_version on SQLite,
 *    this process's cache dropped at once); its console sessions and webhook endpoints revoked;
 *    its idempotency records dropped; its live files marked deleted with their bytes due for
 *    removal. From the commit on, the database refuses any debit of its balance (migration 0021's
 *    trigger), so no task can be charged to it any more, even by a create that authenticated
 *    just before its key was revoked: the set of its queued and processing tasks can only shrink.
 * 2. finish (repeatable, also run by housekeeping): its queued and processing tasks are cancelled
 *    through the public cancel path (so each is refunded exactly once, by the transition that
 *    ends it); the bytes of its files go through FileService.purgeDeleted (a file still used by a
 *    task that could not be cancelled waits for that task's end, as for any deleted file); the
 *    media of its finished tasks are removed from storage and their prompts erased.
 *
 * Kept, for the accounting: the account row (id, name, balance) and every ledger entry, so its
 * balance still equals the sum of its ledger; the tasks' metadata (model, status, credits, times).
 * A task that runs at an upstream that cannot stop it ends on its own (charged if it succeeds,
 * refunded if it fails, as always) and housekeeping then removes its result.
 */
import { PostgresAdapter, type SelectQueryBuilder, sql } from "kysely";
import type { Logger } from "pino";
import { ApiError } from "../errors.js";
import type { FileService } from "../files/service.js";
import { adminTask } from "../generations/admin-list.js";
import type { CancelService } from "../generations/cancel.js";
import { deleteResultMedia } from "../generations/retention.js";
import type { UrlSigner } from "../storage/signed-urls.js";
import type { Storage } from "../storage/storage.js";
import type { Db, Executor } from "../store/db.js";
import type { Database } from "../store/schema.js";
import type { Clock } from "../util/clock.js";
import { announceRevocation } from "./key-revocations.js";
import type { AccountService } from "./service.js";

/** Bumped whenever a field of the export changes meaning or goes away (adding one does not). */
export const EXPORT_SCHEMA_VERSION = 1;

/** Rows read per query while exporting or finishing: memory stays flat however big the account. */
const BATCH = 200;

export interface LifecycleDeps {
  db: Db;
  clock: Clock;
  storage: Storage;
  signer: UrlSigner;
  accounts: AccountService;
  files: FileService;
  log: Logger;
  /** Cancels queued and processing tasks; absent (the CLI, which reaches no upstream): left to the server. */
  cancels?: CancelService;
}

/** What DELETE /admin/v1/accounts/{id} answers (the counts are of this call's work). */
export interface AccountDeletion {
  id: string;
  object: "account";
  deleted: true;
  deleted_at: string;
  keys_revoked: number;
  webhook_endpoints_revoked: number;
  tasks_canceled: number;
  /** Tasks still queued or processing: they end on their own; their results are removed after. */
  pending_tasks: string[];
  files_removed: number;
  /** Deleted files whose bytes still wait (for a pending task, or a storage that failed). */
  files_pending: number;
  results_removed: number;
  /** The balance the ledger still accounts for (kept, not paid out or written off here). */
  credits: number;
}

/** How many pending task ids an answer names. */
const PENDING_SHOWN = 50;

type Cursor = { created_at: string; id: string };

/** `query` (over one table with created_at and id) continued after `cursor`, oldest first. */
function oldestFirst<T extends keyof Database, O>(
  query: SelectQueryBuilder<Database, T, O>,
  table: T,
  cursor: Cursor | undefined,
): SelectQueryBuilder<Database, T, O> {
  const createdAt = sql.ref(`${table}.created_at`);
  const id = sql.ref(`${table}.id`);
  let q = query;
  if (cursor) {
    // A row value, not `a > x or (a = x and b > y)`: SQLite and PostgreSQL both seek the
    // (account_id, created_at, id) index to it, where the OR form rescanned the account's rows
    // from the start on every batch (the export slowed with the square of its size).
    q = q.where(sql<boolean>`(${createdAt}, ${id}) > (${cursor.created_at}, ${cursor.id})`);
  }
  return q.orderBy(createdAt, "asc").orderBy(id, "asc").limit(BATCH);
}

/** Every row `page` returns, one batch at a time. */
async function* batches<R extends Cursor>(page: (cursor: Cursor | undefined) => Promise<R[]>): AsyncGenerator<R> {
  let cursor: Cursor | undefined;
  for (;;) {
    const rows = await page(cursor);
    yield* rows;
    const last = rows.at(-1);
    if (rows.length < BATCH || !last) return;
    cursor = { created_at: last.created_at, id: last.id };
  }
}

/** The account as the admin API shows it, or not_found. */
export async function requireAccount(deps: Pick<LifecycleDeps, "accounts">, accountId: string) {
  const account = await deps.accounts.getAccount(accountId);
  if (!account) throw new ApiError("not_found", "Account not found.");
  return account;
}

/**
 * The account's data as one JSON document, produced piece by piece: the caller writes each chunk
 * as it comes (an HTTP body, a file), so an account with a million tasks is never one string.
 * Each list is read in batches; on a live account a task created during the export may be
 * missing from `tasks` while its ledger entry is listed (the entries are read last).
 * No secret is in it: keys by prefix only (no hash), webhook endpoints without their signing
 * secrets, files without their bytes or storage keys.
 */
export async function* exportAccount(
  deps: Pick<LifecycleDeps, "db" | "clock" | "signer" | "accounts">,
  accountId: string,
): AsyncGenerator<string> {
  const { db, clock, signer } = deps;
  const account = await requireAccount(deps, accountId);
  const head = {
    object: "account_export",
    schema_version: EXPORT_SCHEMA_VERSION,
    generated_at: clock.now().toISOString(),
    account,
  };
  // The head without its closing brace; each list follows as `,"name":[…]`.
  yield JSON.stringify(head).slice(0, -1);

  async function* list<T>(name: string, items: AsyncIterable<T> | Iterable<T>): AsyncGenerator<string> {
    yield `,${JSON.stringify(name)}:[`;
    let first = true;
    for await (const item of items) {
      yield (first ? "" : ",") + JSON.stringify(item);
      first = false;
    }
    yield "]";
  }

  yield* list(
    "api_keys",
    (await deps.accounts.listKeys(accountId)).map(({ account_id: _, ...key }) => key),
  );

  const endpoints = batches((cursor) =>
    oldestFirst(
      db
        .selectFrom("webhook_endpoints")
        .select([
          "id",
          "name",
          "url",
          "event_types",
          "status",
          "failure_count",
          "last_success_at",
          "last_failure_at",
          "created_at",
          "updated_at",
          "disabled_at",
          "revoked_at",
        ])
        .where("account_id", "=", accountId),
      "webhook_endpoints",
      cursor,
    ).execute(),
  );
  yield* list(
    "webhook_endpoints",
    map(endpoints, (e) => ({ ...e, object: "webhook_endpoint", event_types: JSON.parse(e.event_types) as unknown })),
  );

  const files = batches((cursor) =>
    oldestFirst(
      db
        .selectFrom("files")
        .select([
          "id",
          "kind",
          "mime_type",
          "size_bytes",
          "sha256",
          "width",
          "height",
          "duration_seconds",
          "name",
          "client_request_id",
          "source_url",
          "created_at",
          "expires_at",
          "deleted_at",
        ])
        .where("account_id", "=", accountId),
      "files",
      cursor,
    ).execute(),
  );
  yield* list(
    "files",
    map(files, (f) => ({ ...f, object: "file" })),
  );

  const tasks = batches((cursor) =>
    oldestFirst(db.selectFrom("tasks").selectAll().where("account_id", "=", accountId), "tasks", cursor).execute(),
  );
  yield* list(
    "tasks",
    map(tasks, (row) => {
      const { account_id: _, ...operator } = adminTask(row, signer, clock.now());
      return operator;
    }),
  );

  const ledger = batches((cursor) =>
    oldestFirst(
      db
        .selectFrom("ledger_entries")
        .select(["id", "amount", "type", "task_id", "reason", "created_at"])
        .where("account_id", "=", accountId),
      "ledger_entries",
      cursor,
    ).execute(),
  );
  yield* list("ledger", ledger);
  yield "}";
}

async function* map<A, B>(items: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const item of items) yield f(item);
}

/**
 * Marks the account's live files deleted, as DELETE /api/v1/files/{id} marks one (files/service.ts):
 * hidden now, their bytes due for removal once no running task uses them.
 */
async function hideFiles(db: Executor, accountId: string, now: string): Promise<void> {
  await db
    .updateTable("files")
    .set({ deleted_at: now, purge_pending: 1 })
    .where("account_id", "=", accountId)
    .where("deleted_at", "is", null)
    .execute();
}

/**
 * Step 1 (see the top): returns when the account was deleted and what this call revoked. Needs
 * only the store, so the CLI runs it beside a server; the server's housekeeping finishes.
 */
export async function closeAccount(
  deps: Pick<LifecycleDeps, "db" | "clock" | "accounts">,
  accountId: string,
): Promise<{ deletedAt: string; keyIds: string[]; endpoints: number }> {
  const { db, clock } = deps;
  const now = clock.now().toISOString();
  const closed = await db.transaction().execute(async (trx) => {
    // On PostgreSQL the row lock orders this against a create's debit and an operator's key or
    // grant (accounts/service.ts): whichever commits second sees the other.
    const isPg = trx.getExecutor().adapter instanceof PostgresAdapter;
    let q = trx.selectFrom("accounts").select("deleted_at").where("id", "=", accountId);
    if (isPg) q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw new ApiError("not_found", "Account not found.");
    const deletedAt = row.deleted_at ?? now;
    if (!row.deleted_at) {
      await trx.updateTable("accounts").set({ deleted_at: deletedAt }).where("id", "=", accountId).execute();
    }
    const keys = await trx
      .updateTable("api_keys")
      .set({ revoked_at: now })
      .where("account_id", "=", accountId)
      .where("revoked_at", "is", null)
      .returning("id")
      .execute();
    for (const key of keys) await announceRevocation(trx, key.id);
    await trx
      .updateTable("console_sessions")
      .set({ revoked_at: now })
      .where("account_id", "=", accountId)
      .where("revoked_at", "is", null)
      .execute();
    // The dispatcher skips a revoked endpoint, so deliveries already queued are not sent either.
    const endpoints = await trx
      .updateTable("webhook_endpoints")
      .set({ revoked_at: now, updated_at: now, status: "disabled", disabled_at: sql`coalesce(disabled_at, ${now})` })
      .where("account_id", "=", accountId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    await trx.deleteFrom("idempotency_keys").where("account_id", "=", accountId).execute();
    await hideFiles(trx, accountId, now);
    return { deletedAt, keyIds: keys.map((k) => k.id), endpoints: Number(endpoints.numUpdatedRows) };
  });
  // Other processes hear of it as of any revocation; this one forgets the keys now.
  deps.accounts.forgetCachedKeys(closed.keyIds);
  return closed;
}

/** Step 2 (see the top), for a closed account; safe to repeat and to run in several processes. */
export async function finishDeletion(
  deps: LifecycleDeps,
  accountId: string,
): Promise<
  Pick<AccountDeletion, "tasks_canceled" | "pending_tasks" | "files_removed" | "files_pending" | "results_removed">
> {
  const { db, log } = deps;
  let canceled = 0;
  const pending: string[] = [];
  const active = await db
    .selectFrom("tasks")
    .select("id")
    .where("account_id", "=", accountId)
    .where("status", "in", ["queued", "processing"])
    .orderBy("created_at")
    .execute();
  for (const { id } of active) {
    if (!deps.cancels) {
      pending.push(id);
      continue;
    }
    try {
      await deps.cancels.cancel(accountId, id);
      canceled++;
    } catch (error) {
      // not_cancelable: it finished meanwhile (fine) or runs where it cannot be stopped (it ends
      // on its own); service_unavailable: the upstream could not be asked. Either way: pending.
      if (!(error instanceof ApiError)) throw error;
      const now = await db.selectFrom("tasks").select("status").where("id", "=", id).executeTakeFirst();
      if (now?.status === "queued" || now?.status === "processing") pending.push(id);
    }
  }

  // A file an upload or a reference fetch stored after the close (it authenticated before) is
  // not charged for anything, but is the account's data all the same.
  await hideFiles(db, accountId, deps.clock.now().toISOString());
  let filesRemoved = 0;
  const pendingFiles = () =>
    db.selectFrom("files").select("id").where("account_id", "=", accountId).where("purge_pending", "=", 1);
  try {
    // purgeDeleted skips the files a queued or processing task still uses: those wait for it.
    for (let after = ""; ; ) {
      const ids = (await pendingFiles().where("id", ">", after).orderBy("id").limit(BATCH).execute()).map((f) => f.id);
      if (ids.length === 0) break;
      filesRemoved += await deps.files.purgeDeleted(ids);
      after = ids.at(-1) ?? after;
    }
  } catch (error) {
    // Left marked: housekeeping (FileService.collectGarbage) retries.
    log.warn({ accountId, err: error }, "deleted account: could not remove some files' bytes yet");
  }
  const filesPending = Number(
    (
      await db
        .selectFrom("files")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("account_id", "=", accountId)
        .where("purge_pending", "=", 1)
        .executeTakeFirst()
    )?.n ?? 0,
  );

  const resultsRemoved = await removeFinishedResults(deps, accountId);
  return {
    tasks_canceled: canceled,
    pending_tasks: pending.slice(0, PENDING_SHOWN),
    files_removed: filesRemoved,
    files_pending: filesPending,
    results_removed: resultsRemoved,
  };
}

/**
 * Removes the media of the account's finished tasks and erases their prompts (the customer's
 * words); result_purged_at marks each task done, so the next run skips it. A failing storage
 * stops the run (thrown): the tasks not yet marked are tried again next time.
 */
async function removeFinishedResults(deps: LifecycleDeps, accountId: string): Promise<number> {
  const { db, storage, clock } = deps;
  let removed = 0;
  for (;;) {
    const due = await db
      .selectFrom("tasks")
      .select(["id", "result"])
      .where("account_id", "=", accountId)
      .where("status", "in", ["succeeded", "failed"])
      .where("result_purged_at", "is", null)
      .limit(BATCH)
      .execute();
    for (const task of due) {
      await deleteResultMedia(storage, task.result);
      await db
        .updateTable("tasks")
        .set({ result_purged_at: clock.now().toISOString(), prompt: "" })
        .where("id", "=", task.id)
        .execute();
      if (task.result) removed++;
    }
    if (due.length < BATCH) return removed;
  }
}

/**
 * Deletes the account (see the top). Deleting a deleted account finishes whatever is left and
 * answers the same way, with this call's counts: it is idempotent.
 */
export async function deleteAccount(deps: LifecycleDeps, accountId: string): Promise<AccountDeletion> {
  const closed = await closeAccount(deps, accountId);
  const finished = await finishDeletion(deps, accountId);
  const balance = await deps.db.selectFrom("accounts").select("balance").where("id", "=", accountId).executeTakeFirst();
  deps.log.info(
    { accountId, keysRevoked: closed.keyIds.length, ...finished, pending_tasks: finished.pending_tasks.length },
    "account deleted",
  );
  return {
    id: accountId,
    object: "account",
    deleted: true,
    deleted_at: closed.deletedAt,
    keys_revoked: closed.keyIds.length,
    webhook_endpoints_revoked: closed.endpoints,
    ...finished,
    credits: balance?.balance ?? 0,
  };
}

/**
 * Housekeeping: finishes the deletion of every deleted account that still has a task not yet
 * dealt with (one that was running when the account was deleted, or a delete that was cut
 * short) or a live file (stored by a request that authenticated before the close). Returns how
 * many accounts it worked on.
 */
export async function finishDeletedAccounts(deps: LifecycleDeps): Promise<number> {
  const unfinished = await deps.db
    .selectFrom("accounts")
    .select("accounts.id")
    .where("accounts.deleted_at", "is not", null)
    .where(({ or, exists, selectFrom }) =>
      or([
        exists(
          selectFrom("tasks")
            .select("tasks.id")
            .whereRef("tasks.account_id", "=", "accounts.id")
            .where("tasks.result_purged_at", "is", null),
        ),
        exists(
          selectFrom("files")
            .select("files.id")
            .whereRef("files.account_id", "=", "accounts.id")
            .where("files.deleted_at", "is", null),
        ),
      ]),
    )
    .execute();
  for (const { id } of unfinished) await finishDeletion(deps, id);
  return unfinished.length;
}
