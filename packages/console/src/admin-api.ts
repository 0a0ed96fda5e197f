/**
 * The operator pages' client for /admin/v1, authenticated by the operator's session cookie
 * (same-origin credentials, no Authorization header; the browser adds the Origin header the
 * server checks on writes).
 *
 * Not in @framegate/sdk on purpose: the SDK is a client of the Rivya public API that works
 * against any Rivya-v1 server, while /admin/v1 is Framegate's own operator surface, outside the
 * OpenAPI document and free to change with the server it ships with. The console is built and
 * served with that server, so the two cannot drift apart. Errors are api.ts's HttpError, with the
 * envelope's code and message, as for the session calls.
 */
import type { Task } from "@framegate/sdk";
import { sameOriginFetch } from "./api.js";
import { PREFIX } from "./prefix.js";

type Query = Record<string, string | number | undefined>;

async function call<T>(method: string, path: string, opts: { query?: Query; body?: unknown } = {}): Promise<T> {
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(opts.query ?? {})) {
    if (value !== undefined && value !== "") qs.set(key, String(value));
  }
  const url = `${PREFIX}/admin/v1${path}${qs.size ? `?${qs}` : ""}`;
  const response = await sameOriginFetch(method, url, opts.body);
  return (await response.json()) as T;
}

const seg = encodeURIComponent;

export interface Account {
  id: string;
  name: string;
  credits: number;
  max_running_tasks: number | null;
  effective_max_running_tasks: number;
  max_webhook_endpoints: number | null;
  effective_max_webhook_endpoints: number;
  max_file_bytes: number | null;
  effective_max_file_bytes: number;
  max_files: number | null;
  effective_max_files: number;
  created_at: string;
  /** Set once the account is deleted (DELETE /admin/v1/accounts/{id}); the row and ledger stay. */
  deleted_at: string | null;
}

/** What DELETE /admin/v1/accounts/{id} answers: the counts of that call's work. */
export interface AccountDeletion {
  id: string;
  deleted_at: string;
  keys_revoked: number;
  webhook_endpoints_revoked: number;
  tasks_canceled: number;
  /** Tasks an upstream is still running: they end on their own; their results are removed after. */
  pending_tasks: string[];
  files_removed: number;
  files_pending: number;
  results_removed: number;
  credits: number;
}

export interface LedgerSummary {
  balance: number;
  ledger_sum: number;
  granted: number;
  reserved: number;
  refunded: number;
  released: number;
  entries: number;
}

/** The limits PATCH /admin/v1/accounts/{id} sets; null puts one back on the server default. */
export type LimitChanges = Partial<
  Record<"max_running_tasks" | "max_webhook_endpoints" | "max_file_bytes" | "max_files", number | null>
>;

export interface ApiKeyInfo {
  id: string;
  account_id: string;
  name: string | null;
  prefix: string;
  scopes: string[];
  expires_at: string | null;
  revoked_at: string | null;
  created_at: string;
}

export interface UsageCounts {
  tasks_created: number;
  tasks_succeeded: number;
  tasks_failed: number;
  tasks_canceled: number;
  credits_charged: number;
  credits_refunded: number;
  credits_granted: number;
}

export interface AdminUsage {
  start: string;
  end: string;
  totals: UsageCounts;
}

export interface AdminTask {
  task: Task;
  account_id: string;
  provider: string | null;
  upstream_id: string | null;
  upstream_details: unknown;
  submit_state: unknown;
  error_detail: string | null;
}

export interface AdminTaskPage {
  data: AdminTask[];
  has_more: boolean;
  refunds: { count: number; credits: number };
}

export interface TaskFilters {
  account_id?: string;
  model?: string;
  provider?: string;
  status?: string;
  created_after?: string;
  created_before?: string;
}

export interface JobStateStats {
  count: number;
  oldest_age_seconds?: number | null;
  next_due_in_seconds?: number | null;
}

export type WindowName = "last_hour" | "last_day";

export interface ProviderErrorRate {
  finished: number;
  errors: number;
  error_rate: number | null;
}

export interface OperatorStats {
  generated_at: string;
  queue: {
    driver: string;
    classes: Record<string, Record<"waiting" | "running" | "scheduled", JobStateStats>>;
  };
  tasks: Record<
    WindowName,
    {
      created: number;
      by_status: Record<"queued" | "processing" | "succeeded" | "failed", number>;
      failure_reasons: Record<string, number>;
    }
  >;
  refunds: Record<WindowName, { count: number; credits: number }>;
  providers: {
    circuit_scope: "process" | null;
    data: {
      provider: string;
      configured: boolean;
      circuit: { state: "closed" | "open" | "half_open"; since: string; consecutive_failures: number } | null;
      recent: Record<WindowName, ProviderErrorRate>;
      concurrency: { in_use: number; limit: number | null };
    }[];
  };
  webhooks: {
    disabled_endpoints: {
      count: number;
      recent: {
        id: string;
        account_id: string;
        url: string;
        disabled_at: string | null;
        reason: "failing" | "account";
        failing_since: string | null;
        failure_count: number;
      }[];
    };
  };
}

export const admin = {
  stats: () => call<OperatorStats>("GET", "/stats"),
  accounts: {
    /** A page of accounts, newest first. */
    list: (page: { limit?: number; starting_after?: string } = {}) =>
      call<{ data: Account[]; has_more: boolean }>("GET", "/accounts", { query: page }),
    get: (id: string) => call<Account & { ledger: LedgerSummary }>("GET", `/accounts/${seg(id)}`),
    create: (body: { name: string; credits: number }) => call<Account>("POST", "/accounts", { body }),
    updateLimits: (id: string, body: LimitChanges) => call<Account>("PATCH", `/accounts/${seg(id)}`, { body }),
    /** A positive amount grants, a negative one debits (refused, 402, when it would pass below 0). */
    credit: (id: string, body: { amount: number; reason?: string }) =>
      call<{ credits: number }>("POST", `/accounts/${seg(id)}/credits`, { body }),
    usage: (id: string) => call<AdminUsage>("GET", "/usage", { query: { account_id: id } }),
    remove: (id: string) => call<AccountDeletion>("DELETE", `/accounts/${seg(id)}`),
    /** GET /admin/v1/accounts/{id}/export, a JSON attachment: a link the browser downloads with the cookie. */
    exportUrl: (id: string) => `${PREFIX}/admin/v1/accounts/${seg(id)}/export`,
  },
  keys: {
    list: (accountId: string) => call<{ data: ApiKeyInfo[] }>("GET", `/accounts/${seg(accountId)}/keys`),
    create: (accountId: string, body: { name?: string }) =>
      call<ApiKeyInfo & { key: string }>("POST", `/accounts/${seg(accountId)}/keys`, { body }),
    revoke: (keyId: string) => call<ApiKeyInfo>("DELETE", `/keys/${seg(keyId)}`),
  },
  tasks: {
    list: (filters: TaskFilters & { limit?: number; starting_after?: string }) =>
      call<AdminTaskPage>("GET", "/tasks", { query: { ...filters } }),
    get: (id: string) => call<AdminTask>("GET", `/tasks/${seg(id)}`),
  },
};
