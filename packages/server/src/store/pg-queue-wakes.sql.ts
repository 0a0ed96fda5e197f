/**
 * Migration 0014 (PostgreSQL only): the two functions through which the graphile-worker queue
 * (queue/graphile-queue.ts) makes a job due now and puts a running job back, so that a wake
 * (`runNow`) that arrives while the job runs is never lost. Shipped with that migration: change
 * them only through a new migration (`create or replace`).
 *
 * graphile-worker's reschedule_jobs skips a locked (running) job, and a running job that asks to
 * run later is put back by adding its successor under the same key. A wake in between used to
 * be dropped. Now:
 * - `framegate_run_now(key)` reschedules the key's job when it is not running; when it is, it
 *   leaves a row in `queue_wakes` instead.
 * - `framegate_requeue(...)`, called by the running job to add its successor, takes (deletes) that
 *   row; when there was one and the delay is one a wake may shorten, the successor is due at once.
 * Both take an advisory lock on the key for the rest of their transaction (run-now a shared one,
 * so wakers never wait for each other; requeue an exclusive one), and both read after taking it:
 * each sees the other's committed work, whichever comes first. Without the lock, a wake whose
 * transaction was still open when the requeue ran was invisible to it, and its reschedule had seen
 * the job still running: lost again. Every statement of a volatile plpgsql function reads a fresh
 * snapshot, which is what makes "read after taking the lock" hold inside one call.
 *
 * Nothing here adds a second job under a key: requeue uses graphile-worker's `replace` mode on the
 * job's own key as before, and run-now only reschedules or leaves a mark, so one task never has
 * two submit jobs (no double submit).
 */
export const QUEUE_WAKES_0014 = `
create table queue_wakes (
  job_key text primary key
);

create or replace function framegate_run_now(p_job_key text) returns void
language plpgsql volatile as $$
begin
  perform pg_advisory_xact_lock_shared(hashtext('framegate:wake:' || p_job_key));
  if exists (select 1 from graphile_worker.jobs where key = p_job_key and locked_at is not null) then
    insert into queue_wakes (job_key) values (p_job_key) on conflict do nothing;
  else
    perform graphile_worker.reschedule_jobs(
      array(select id from graphile_worker.jobs where key = p_job_key and locked_at is null),
      run_at => clock_timestamp()
    );
    -- Wakes an idle worker in every process at commit (a due job arrives as a new one would).
    perform pg_notify('jobs:insert', '{"count":1}');
  end if;
end
$$;

create or replace function framegate_requeue(
  p_kind text,
  p_payload json,
  p_job_key text,
  p_delay_ms integer,
  p_max_attempts integer,
  p_wakeable boolean
) returns boolean
language plpgsql volatile as $$
declare
  woken boolean;
begin
  perform pg_advisory_xact_lock(hashtext('framegate:wake:' || p_job_key));
  delete from queue_wakes where job_key = p_job_key;
  woken := found and p_wakeable;
  perform graphile_worker.add_job(
    p_kind,
    p_payload,
    run_at => clock_timestamp() + (case when woken then 0 else greatest(p_delay_ms, 0) end) * interval '1 millisecond',
    max_attempts => p_max_attempts,
    job_key => p_job_key,
    job_key_mode => 'replace'
  );
  return woken;
end
$$;
`;
