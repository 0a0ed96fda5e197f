/**
 * Schema migrations, written once through Kysely's schema builder so the same list runs on
 * SQLite and PostgreSQL. Never edit a shipped migration: add a new one.
 */
import { type Kysely, type Migration, type MigrationProvider, sql } from "kysely";
import type { Dialect } from "./db.js";
import { CREATE_GENERATION_FUNCTION_0010 } from "./pg-create-generation.sql.js";
import { CREATE_LIVE_FILES_0016 } from "./pg-create-live-files.sql.js";
import { CREATE_QUIET_0015 } from "./pg-create-quiet.sql.js";
import { QUEUE_WAKES_0014 } from "./pg-queue-wakes.sql.js";

const migrations = (dialect: Dialect): Record<string, Migration> => ({
  "0001_core": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("accounts")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("balance", "integer", (c) => c.notNull().defaultTo(0).check(sqlNonNegative("balance")))
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("api_keys")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("name", "text")
        .addColumn("prefix", "text", (c) => c.notNull())
        .addColumn("key_hash", "text", (c) => c.notNull().unique())
        .addColumn("scopes", "text", (c) => c.notNull())
        .addColumn("expires_at", "text")
        .addColumn("revoked_at", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("api_keys_account").on("api_keys").column("account_id").execute();

      await db.schema
        .createTable("ledger_entries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("amount", "integer", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("task_id", "text")
        .addColumn("reason", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("ledger_entries_account").on("ledger_entries").column("account_id").execute();
      // The database itself refuses a second reservation or refund for one task.
      await db.schema
        .createIndex("ledger_entries_task_type")
        .on("ledger_entries")
        .columns(["task_id", "type"])
        .unique()
        .execute();

      await db.schema
        .createTable("tasks")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("model", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("prompt", "text", (c) => c.notNull())
        .addColumn("params", "text", (c) => c.notNull())
        .addColumn("references_json", "text", (c) => c.notNull())
        .addColumn("reserved_credits", "integer", (c) => c.notNull())
        .addColumn("final_credits", "integer", (c) => c.notNull())
        .addColumn("client_request_id", "text")
        .addColumn("provider", "text")
        .addColumn("upstream_id", "text")
        .addColumn("result", "text")
        .addColumn("error_reason", "text")
        .addColumn("error_message", "text")
        // What the provider said: for operators and logs, never shown to clients.
        .addColumn("error_detail", "text")
        .addColumn("result_expires_at", "text")
        .addColumn("result_purged_at", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("started_at", "text")
        .addColumn("completed_at", "text")
        .execute();
      await db.schema
        .createIndex("tasks_account_created")
        .on("tasks")
        .columns(["account_id", "created_at", "id"])
        .execute();

      await db.schema
        .createIndex("tasks_result_expiry")
        .on("tasks")
        .columns(["result_purged_at", "result_expires_at"])
        .execute();

      await db.schema
        .createTable("jobs")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("job_key", "text", (c) => c.unique())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("run_at", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("max_attempts", "integer", (c) => c.notNull())
        .addColumn("locked_by", "text")
        .addColumn("locked_until", "text")
        .addColumn("last_error", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("jobs_run_at").on("jobs").column("run_at").execute();

      await db.schema
        .createTable("idempotency_keys")
        .addColumn("account_id", "text", (c) => c.notNull())
        .addColumn("method", "text", (c) => c.notNull())
        .addColumn("path", "text", (c) => c.notNull())
        .addColumn("idem_key", "text", (c) => c.notNull())
        .addColumn("fingerprint", "text", (c) => c.notNull())
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("response_status", "integer")
        .addColumn("response_body", "text")
        .addColumn("locked_until", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("idempotency_keys_pk", ["account_id", "method", "path", "idem_key"])
        .execute();
      await db.schema.createIndex("idempotency_keys_expires").on("idempotency_keys").column("expires_at").execute();

      await db.schema
        .createTable("settings")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .execute();
    },
  },
  "0002_files": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("files")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("mime_type", "text", (c) => c.notNull())
        .addColumn("size_bytes", "integer", (c) => c.notNull())
        .addColumn("sha256", "text", (c) => c.notNull())
        .addColumn("width", "integer")
        .addColumn("height", "integer")
        .addColumn("duration_seconds", "real")
        .addColumn("storage_key", "text", (c) => c.notNull())
        .addColumn("name", "text")
        .addColumn("client_request_id", "text")
        .addColumn("source_url", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("deleted_at", "text")
        .execute();
      await db.schema.createIndex("files_account_source").on("files").columns(["account_id", "source_url"]).execute();
      await db.schema.createIndex("files_expiry").on("files").columns(["deleted_at", "expires_at"]).execute();

      // Which files a task uses: garbage collection keeps them while the task is running.
      await db.schema
        .createTable("task_references")
        .addColumn("task_id", "text", (c) => c.notNull().references("tasks.id"))
        .addColumn("position", "integer", (c) => c.notNull())
        .addColumn("file_id", "text", (c) => c.notNull().references("files.id"))
        .addPrimaryKeyConstraint("task_references_pk", ["task_id", "position"])
        .execute();
      await db.schema.createIndex("task_references_file").on("task_references").column("file_id").execute();
    },
  },
  "0003_webhooks": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("webhook_endpoints")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("name", "text")
        .addColumn("url", "text", (c) => c.notNull())
        .addColumn("event_types", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        // Signing secrets are needed in clear to sign, so they are encrypted at rest instead of hashed.
        .addColumn("secret_encrypted", "text", (c) => c.notNull())
        .addColumn("secret_preview", "text", (c) => c.notNull())
        .addColumn("previous_secret_encrypted", "text")
        .addColumn("previous_secret_expires_at", "text")
        .addColumn("failure_count", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("failing_since", "text")
        .addColumn("last_success_at", "text")
        .addColumn("last_failure_at", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("disabled_at", "text")
        .addColumn("revoked_at", "text")
        .execute();
      await db.schema
        .createIndex("webhook_endpoints_account")
        .on("webhook_endpoints")
        .columns(["account_id", "created_at"])
        .execute();

      await db.schema
        .createTable("webhook_events")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull().references("accounts.id"))
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("task_id", "text")
        /** The test event goes to one endpoint only. */
        .addColumn("endpoint_id", "text")
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("webhook_events_account")
        .on("webhook_events")
        .columns(["account_id", "created_at", "id"])
        .execute();
      // One event per task and type, whatever runs twice.
      await db.schema
        .createIndex("webhook_events_task_type")
        .on("webhook_events")
        .columns(["task_id", "type"])
        .unique()
        .execute();

      await db.schema
        .createTable("webhook_deliveries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("event_id", "text", (c) => c.notNull().references("webhook_events.id"))
        .addColumn("endpoint_id", "text", (c) => c.notNull().references("webhook_endpoints.id"))
        .addColumn("attempt", "integer", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("response_status", "integer")
        .addColumn("duration_ms", "integer")
        .addColumn("error", "text")
        .addColumn("response_body", "text")
        .addColumn("next_attempt_at", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex("webhook_deliveries_endpoint")
        .on("webhook_deliveries")
        .columns(["endpoint_id", "created_at", "id"])
        .execute();
      await db.schema
        .createIndex("webhook_deliveries_event")
        .on("webhook_deliveries")
        .columns(["event_id", "endpoint_id"])
        .execute();
    },
  },
  "0004_upstreams": {
    async up(db: Kysely<unknown>) {
      // Which providers a submit was tried on, and how it ended: drives failover and recovery.
      await db.schema.alterTable("tasks").addColumn("submit_state", "text").execute();
      // Operator-visible facts of the upstream run (e.g. Kling's final_unit_deduction).
      await db.schema.alterTable("tasks").addColumn("upstream_details", "text").execute();
    },
  },
  "0005_postgres_number_widths": {
    async up(db: Kysely<unknown>) {
      // SQLite's integer is 64-bit and its real a double; PostgreSQL's are int4 and float4. Widen
      // credits and byte sizes to bigint and durations to double precision there, so both stores
      // hold the same values (db.ts parses int8 back to numbers). Nothing to do on SQLite.
      if (dialect !== "postgres") return;
      const widen: [string, string, "bigint" | "double precision"][] = [
        ["accounts", "balance", "bigint"],
        ["ledger_entries", "amount", "bigint"],
        ["tasks", "reserved_credits", "bigint"],
        ["tasks", "final_credits", "bigint"],
        ["files", "size_bytes", "bigint"],
        ["files", "duration_seconds", "double precision"],
      ];
      for (const [table, column, type] of widen) {
        await db.schema
          .alterTable(table)
          .alterColumn(column, (c) => c.setDataType(type))
          .execute();
      }
    },
  },
  "0006_queue_pools": {
    async up(db: Kysely<unknown>) {
      // Live graphile-worker pools and their heartbeats (PostgreSQL's time, in ms): a pool
      // whose heartbeat stops (a killed process) has its locked jobs released by the others.
      await db.schema
        .createTable("queue_pools")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("heartbeat_ms", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0007_webhook_inflight": {
    async up(db: Kysely<unknown>) {
      // Webhook deliveries in flight, one row per HTTP attempt, shared by every process: they
      // cap the attempts at once per endpoint and per account (webhooks/inflight.ts). A row
      // left by a killed process expires at expires_at.
      await db.schema
        .createTable("webhook_inflight")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("account_id", "text", (c) => c.notNull())
        .addColumn("endpoint_id", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("webhook_inflight_account").on("webhook_inflight").column("account_id").execute();
    },
  },
  "0008_account_limits": {
    async up(db: Kysely<unknown>) {
      // Per-account override of ACCOUNT_MAX_RUNNING_TASKS (null: the configured default).
      await db.schema.alterTable("accounts").addColumn("max_running_tasks", "integer").execute();
      // Fair hand-out counts running tasks and looks for waiting ones on every submit: both
      // only touch queued and processing tasks, a small slice of a table that keeps history.
      await db.schema
        .createIndex("tasks_status_account")
        .on("tasks")
        .columns(["status", "account_id", "created_at"])
        .execute();
    },
  },
  "0009_account_quotas": {
    async up(db: Kysely<unknown>) {
      // Per-account overrides of ACCOUNT_MAX_WEBHOOK_ENDPOINTS, ACCOUNT_MAX_FILE_BYTES and
      // ACCOUNT_MAX_FILES (null: the configured default). Bytes may pass int4 on PostgreSQL.
      await db.schema.alterTable("accounts").addColumn("max_webhook_endpoints", "integer").execute();
      await db.schema.alterTable("accounts").addColumn("max_file_bytes", "bigint").execute();
      await db.schema.alterTable("accounts").addColumn("max_files", "integer").execute();
      // Every upload sums the account's live files; deleted rows stay as history, so the
      // index lets that sum skip them.
      await db.schema.createIndex("files_account_live").on("files").columns(["account_id", "deleted_at"]).execute();
    },
  },
  "0010_pg_create_generation": {
    async up(db: Kysely<unknown>) {
      // PostgreSQL: a create in one round trip (see pg-create-generation.sql.ts). SQLite runs the
      // same steps as statements in one local transaction, where round trips cost nothing.
      if (dialect !== "postgres") return;
      await sql.raw(CREATE_GENERATION_FUNCTION_0010).execute(db);
    },
  },
  "0011_jobs_kind_run_at": {
    async up(db: Kysely<unknown>) {
      // Each job class's runners claim only their kinds (queue/table-queue.ts). Along run_at
      // alone, a claim for a class with nothing due walked every due job of the other classes
      // (thousands of generation jobs under load, for each webhook runner's look).
      await db.schema.createIndex("jobs_kind_run_at").on("jobs").columns(["kind", "run_at"]).execute();
    },
  },
  "0012_tasks_in_flight": {
    async up(db: Kysely<unknown>) {
      // Tasks with a submit in flight (generations/fair-share.ts counts them on every submit and
      // every finish): a few rows, where the plain condition read every queued task's row. The
      // condition must stay word for word the one of IN_FLIGHT_CONDITION in fair-share.ts.
      await db.schema
        .createIndex("tasks_in_flight")
        .on("tasks")
        .columns(["status", "account_id"])
        .where(sql<boolean>`submit_state like '%"uncertain":%'`)
        .execute();
    },
  },
  "0013_tasks_status_account_created": {
    async up(db: Kysely<unknown>) {
      // Fair share's "oldest waiting task of this account" orders by (created_at, id): only
      // tasks_account_created gave that order, so it walked the account's whole history, oldest
      // (long finished) tasks first. With id in the status index, the walk starts at its queued tasks.
      await db.schema
        .createIndex("tasks_status_account_created")
        .on("tasks")
        .columns(["status", "account_id", "created_at", "id"])
        .execute();
      await db.schema.dropIndex("tasks_status_account").execute();
    },
  },
  "0014_queue_wakes": {
    async up(db: Kysely<unknown>) {
      // A wake (Queue.runNow) that finds its job running is kept until the job puts itself back,
      // which then comes due at once: the table queue marks the job row; graphile-worker's rows
      // are not ours, so PostgreSQL keeps the mark in queue_wakes (see pg-queue-wakes.sql.ts).
      await db.schema
        .alterTable("jobs")
        .addColumn("woken", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      if (dialect === "postgres") await sql.raw(QUEUE_WAKES_0014).execute(db);
    },
  },
  "0015_pg_create_without_notify": {
    async up(db: Kysely<unknown>) {
      // PostgreSQL: a create's submit job is added without NOTIFY, whose commit-time lock made every
      // create of every account commit one at a time (see pg-create-quiet.sql.ts).
      if (dialect !== "postgres") return;
      await sql.raw(CREATE_QUIET_0015()).execute(db);
    },
  },
  "0016_file_deletion": {
    async up(db: Kysely<unknown>) {
      // DELETE /api/v1/files/{id} hides a file at once (deleted_at) but keeps its bytes while a
      // queued or processing task needs them: purge_pending marks such files until housekeeping
      // or the task's end removes the bytes (files/service.ts, purgeDeleted).
      await db.schema
        .alterTable("files")
        .addColumn("purge_pending", "integer", (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createIndex("files_purge_pending")
        .on("files")
        .column("id")
        .where(sql<boolean>`purge_pending = 1`)
        .execute();
      // GET /api/v1/files: an account's live files, newest first, without reading its history.
      // It leads with files_account_live's columns (the quota's sum uses it as well): it replaces it.
      await db.schema
        .createIndex("files_account_listing")
        .on("files")
        .columns(["account_id", "deleted_at", "created_at", "id"])
        .execute();
      await db.schema.dropIndex("files_account_live").execute();
      if (dialect === "postgres") await sql.raw(CREATE_LIVE_FILES_0016()).execute(db);
    },
  },
  "0017_ledger_account_created": {
    async up(db: Kysely<unknown>) {
      // GET /api/v1/credits/ledger lists an account's entries newest first by (created_at, id),
      // and the usage report sums them over a time range: both read only their part of the
      // history with this index. It leads with account_id, so it replaces ledger_entries_account.
      await db.schema
        .createIndex("ledger_entries_account_created")
        .on("ledger_entries")
        .columns(["account_id", "created_at", "id"])
        .execute();
      await db.schema.dropIndex("ledger_entries_account").execute();
    },
  },
  "0018_tasks_client_request": {
    async up(db: Kysely<unknown>) {
      // GET /api/v1/generations?client_request_id=…: an account's tasks with that id, newest
      // first, without walking its history. Partial, so creates without one pay nothing for it.
      await db.schema
        .createIndex("tasks_account_client_request")
        .on("tasks")
        .columns(["account_id", "client_request_id", "created_at", "id"])
        .where(sql<boolean>`client_request_id is not null`)
        .execute();
    },
  },
  "0019_console_sessions": {
    async up(db: Kysely<unknown>) {
      // The web console's sign-in sessions (console/sessions.ts). Only the SHA-256 of the cookie's
      // token is stored, so a copy of the table signs no one in. A customer session keeps the
      // hash of the API key it was made from (the key's own stored hash), so every request goes
      // through the key's checks; an operator session keeps the hash of the ADMIN_TOKEN it was
      // made with, so changing that token ends it.
      await db.schema
        .createTable("console_sessions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("token_hash", "text", (c) => c.notNull().unique())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("account_id", "text", (c) => c.references("accounts.id"))
        .addColumn("key_id", "text", (c) => c.references("api_keys.id"))
        .addColumn("credential_hash", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("revoked_at", "text")
        .execute();
      // Pruning deletes by expiry.
      await db.schema.createIndex("console_sessions_expires").on("console_sessions").column("expires_at").execute();
    },
  },
  "0020_tasks_created": {
    async up(db: Kysely<unknown>) {
      // GET /admin/v1/tasks lists every account's tasks newest first (generations/admin-list.ts).
      // Each existing tasks index leads with account_id (or status, then account_id), so without
      // an account filter the list had to sort the whole table for one page.
      await db.schema.createIndex("tasks_created").on("tasks").columns(["created_at", "id"]).execute();
      // With a status filter alone (the failed ones, what is still queued), its range in page order.
      await db.schema.createIndex("tasks_status_created").on("tasks").columns(["status", "created_at", "id"]).execute();
    },
  },
  "0021_account_deletion": {
    async up(db: Kysely<unknown>) {
      // DELETE /admin/v1/accounts/{id} (accounts/lifecycle.ts) closes an account: deleted_at set,
      // its keys, sessions and endpoints revoked, its files and results removed. The row stays, so
      // the ledger keeps its account and balance = sum(ledger) still holds.
      await db.schema.alterTable("accounts").addColumn("deleted_at", "text").execute();
      // After the close commits nothing may charge the account again: a create that authenticated
      // just before its key was revoked would otherwise commit a task no one cancels. The guarded
      // debit of every create path (ledger.ts, PostgreSQL's framegate_create_generation) updates
      // the account's row, so this trigger skips any decrease of a closed account's balance: the
      // UPDATE changes no row and the create answers as for a short balance, having written
      // nothing. Credits (refunds, releases) still land. On PostgreSQL the close's UPDATE and a
      // create's debit take the same row lock, so one of them sees the other committed. The
      // condition is the trigger's WHEN, checked without calling a function: a create's debit
      // of a live account pays nothing more than that comparison.
      if (dialect === "postgres") {
        await sql
          .raw(`
create function framegate_skip_row() returns trigger language plpgsql as $fn$
begin
  return null;
end
$fn$;
create trigger accounts_no_debit_after_deletion before update of balance on accounts
  for each row when (new.balance < old.balance and old.deleted_at is not null)
  execute function framegate_skip_row();`)
          .execute(db);
      } else {
        await sql
          .raw(`
create trigger accounts_no_debit_after_deletion before update of balance on accounts
  when new.balance < old.balance and old.deleted_at is not null
begin
  select raise(ignore);
end`)
          .execute(db);
      }
    },
  },
  "0022_accounts_created": {
    async up(db: Kysely<unknown>) {
      // GET /admin/v1/accounts pages newest first, as every other list: an index walk from the
      // cursor instead of a sort of every account on each page.
      await db.schema.createIndex("accounts_created").on("accounts").columns(["created_at", "id"]).execute();
    },
  },
});

function sqlNonNegative(column: string) {
  return sql`${sql.ref(column)} >= 0`;
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations() {
      return migrations(dialect);
    },
  };
}
