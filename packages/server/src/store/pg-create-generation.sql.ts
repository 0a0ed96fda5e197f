/**
 * Migration 0010 (PostgreSQL only): `framegate_create_generation`, the whole create of a
 * generation in one statement, so a create costs one round trip instead of ten. Shipped with
 * that migration: change it only through a new migration (`create or replace`).
 *
 * Called by generations/create-pg.ts in autocommit, so the function's writes are one
 * transaction. In order:
 * 1. With an idempotency row to store (p_idem): delete the stale row the caller judged
 *    (p_idem_replace = its created_at, only if it is still that row), then read the key's row;
 *    if there is one, return it ('stored') without writing anything: the caller judges it
 *    (replay, 409, or stale and call again).
 * 2. Reserve: a guarded balance update; if the balance is short, return 'insufficient' with the
 *    balance, having written nothing (the caller renders and stores the 402).
 * 3. Insert the ledger entry, the task (p_task: the tasks row as JSON), its references, the
 *    submit job (graphile-worker's add_job) and the completed idempotency row; return 'created'.
 * Two creates racing with one key: the loser does not see the winner's uncommitted row in step
 * 1, waits on the account's row lock in step 2, and its insert in step 3 fails on the primary
 * key once the winner commits, rolling back all of its writes; the caller then calls again and
 * gets the winner's row in step 1.
 */
export const CREATE_GENERATION_FUNCTION_0010 = `
create or replace function framegate_create_generation(
  p_task json,
  p_file_ids text[],
  p_ledger_id text,
  p_job_kind text,
  p_job_payload json,
  p_job_key text,
  p_job_max_attempts integer,
  p_job_key_mode text,
  p_job_delay_ms bigint,
  p_idem json,
  p_idem_replace text
) returns table (
  o_outcome text,
  o_fingerprint text,
  o_state text,
  o_response_status integer,
  o_response_body text,
  o_locked_until text,
  o_created_at text,
  o_expires_at text,
  o_balance bigint
) language plpgsql as $fn$
declare
  t tasks := json_populate_record(null::tasks, p_task);
  k idempotency_keys := json_populate_record(null::idempotency_keys, p_idem);
  s idempotency_keys;
begin
  if p_idem is not null then
    if p_idem_replace is not null then
      delete from idempotency_keys i
        where i.account_id = k.account_id and i.method = k.method and i.path = k.path
          and i.idem_key = k.idem_key and i.created_at = p_idem_replace;
    end if;
    select * into s from idempotency_keys i
      where i.account_id = k.account_id and i.method = k.method and i.path = k.path and i.idem_key = k.idem_key;
    if found then
      return query select 'stored', s.fingerprint, s.state, s.response_status, s.response_body,
        s.locked_until, s.created_at, s.expires_at, null::bigint;
      return;
    end if;
  end if;

  update accounts a set balance = a.balance - t.reserved_credits
    where a.id = t.account_id and a.balance >= t.reserved_credits;
  if not found then
    return query select 'insufficient', null::text, null::text, null::integer, null::text, null::text,
      null::text, null::text, (select a.balance from accounts a where a.id = t.account_id)::bigint;
    return;
  end if;

  insert into ledger_entries (id, account_id, amount, type, task_id, reason, created_at)
    values (p_ledger_id, t.account_id, -t.reserved_credits, 'reserve', t.id, null, t.created_at);
  insert into tasks values (t.*);
  insert into task_references (task_id, position, file_id)
    select t.id, r.ord - 1, r.file_id from unnest(p_file_ids) with ordinality as r(file_id, ord);
  perform graphile_worker.add_job(
    p_job_kind,
    p_job_payload,
    run_at => clock_timestamp() + p_job_delay_ms * interval '1 millisecond',
    max_attempts => p_job_max_attempts,
    job_key => p_job_key,
    job_key_mode => p_job_key_mode
  );
  if p_idem is not null then
    insert into idempotency_keys values (k.*);
  end if;
  return query select 'created', null::text, null::text, null::integer, null::text, null::text,
    null::text, null::text, null::bigint;
end
$fn$;
`;
