import {
  AccountService,
  ALL_SCOPES,
  ApiError,
  applyMigrations,
  type Config,
  isScope,
  migrationState,
  NewerDatabaseError,
  type Scope,
  type StoreHandle,
  systemClock,
} from "@framegate/server";
import { formatTable } from "./pages.js";
import type { Printable } from "./run.js";

type Ctx = { store: StoreHandle; config: Config };
const service = (ctx: Ctx) =>
  new AccountService(ctx.store.db, systemClock, {
    defaultMaxRunningTasks: ctx.config.worker.accountMaxRunningTasks,
    quotas: ctx.config.quotas,
  });

export async function migrate(ctx: Ctx, opts: { dryRun?: boolean } = {}): Promise<Printable> {
  if (opts.dryRun) return migrateDryRun(ctx);
  // The store was opened without migrating, so this reports what it applies now.
  const applied = await applyMigrations(ctx.config, ctx.store);
  return {
    json: { applied },
    text: applied.length ? `applied: ${applied.join(", ")}` : "database is up to date",
  };
}

/** What `migrate` would apply, read without writing anything (the store was opened without migrating). */
async function migrateDryRun(ctx: Ctx): Promise<Printable> {
  const state = await migrationState(ctx.store);
  // A database a newer version migrated: the same refusal as every other start, before any list.
  if (state.unknown.length > 0)
    throw new NewerDatabaseError(state.unknown, [...state.applied, ...state.pending].at(-1));
  const graphile = ctx.config.queueDriver === "graphile" && ctx.store.dialect === "postgres";
  return {
    json: {
      pending: state.pending,
      applied: state.applied.length,
      ...(graphile ? { graphile_worker: "checked on migrate" } : {}),
    },
    text: [
      state.pending.length
        ? `pending (${state.pending.length}), not applied:\n${state.pending.map((name) => `  ${name}`).join("\n")}`
        : `database is up to date (${state.applied.length} migrations applied)`,
      ...(graphile ? ["graphile-worker's own schema is created or updated by `framegate migrate` as well."] : []),
    ].join("\n"),
  };
}

export async function createAccount(ctx: Ctx, opts: { name: string; credits: number }): Promise<Printable> {
  if (opts.credits < 0) throw new ApiError("validation_failed", "--credits must be 0 or more");
  const account = await service(ctx).createAccount({ name: opts.name, credits: opts.credits });
  return { json: account, text: `created ${account.id} (${account.name}) with ${account.credits} credits` };
}

export async function listAccounts(ctx: Ctx): Promise<Printable> {
  const accounts = await service(ctx).listAccounts();
  const lines = accounts.map(
    (a) => `${a.id}  ${String(a.credits).padStart(10)}  ${a.name}${a.deleted_at ? `  (deleted ${a.deleted_at})` : ""}`,
  );
  return { json: accounts, text: lines.length ? lines.join("\n") : "no accounts" };
}

function parseScopes(list: string | undefined): Scope[] | undefined {
  if (!list) return undefined;
  const scopes = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = scopes.filter((s) => !isScope(s));
  if (bad.length || scopes.length === 0) {
    throw new ApiError("validation_failed", `unknown scope(s) ${bad.join(", ")}; valid: ${ALL_SCOPES.join(", ")}`);
  }
  return scopes as Scope[];
}

export async function createKey(
  ctx: Ctx,
  opts: { account: string; name?: string; scopes?: string; expiresAt?: string },
): Promise<Printable> {
  let expiresAt: string | null = null;
  if (opts.expiresAt) {
    const t = new Date(opts.expiresAt);
    if (Number.isNaN(t.getTime())) throw new ApiError("validation_failed", "--expires-at must be an ISO-8601 time");
    expiresAt = t.toISOString();
  }
  const scopes = parseScopes(opts.scopes);
  const key = await service(ctx).createKey(opts.account, {
    name: opts.name ?? null,
    expiresAt,
    ...(scopes ? { scopes } : {}),
  });
  return {
    json: key,
    text: `created ${key.id} for ${key.account_id}\n\n  ${key.key}\n\nThis is the only time the key is shown; store it now.`,
  };
}

export async function listKeys(ctx: Ctx, opts: { account: string }): Promise<Printable> {
  const keys = await service(ctx).listKeys(opts.account);
  if (keys.length === 0) return { json: keys, text: "no keys" };
  const rows = keys.map((k) => [
    k.id,
    `${k.prefix}…`,
    k.revoked_at ? "revoked" : k.expires_at ? `expires ${k.expires_at}` : "active",
    // A key with every scope says so in one word rather than a line of seven.
    ALL_SCOPES.every((s) => k.scopes.includes(s)) ? "all" : k.scopes.join(",") || "none",
    k.name ?? "",
  ]);
  return { json: keys, text: formatTable(["ID", "PREFIX", "STATE", "SCOPES", "NAME"], rows) };
}

export async function revokeKey(ctx: Ctx, opts: { keyId: string }): Promise<Printable> {
  const key = await service(ctx).revokeKey(opts.keyId);
  if (!key) throw new ApiError("not_found", `API key ${opts.keyId} not found`);
  return { json: key, text: `revoked ${key.id} at ${key.revoked_at}` };
}

export async function grantCredits(
  ctx: Ctx,
  opts: { account: string; amount: number; reason?: string },
): Promise<Printable> {
  const credits = await service(ctx).grant(opts.account, opts.amount, opts.reason ?? null);
  return { json: { account: opts.account, credits }, text: `${opts.account} now has ${credits} credits` };
}
