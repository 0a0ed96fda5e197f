/**
 * Migration 0015 (PostgreSQL only): creates stop serializing on PostgreSQL's NOTIFY lock.
 *
 * graphile-worker's add_job ends with pg_notify, and a transaction that notified takes one lock
 * per database at commit and holds it until its commit record is flushed: every create of every
 * account (framegate_create_generation adds the task's submit job) committed one after the other,
 * behind that lock and a WAL flush each. Sampled under load, most of the API's connections sat
 * in `Lock: object` while one was in `WALSync`: more accounts did not make creates faster.
 *
 * `framegate_add_job_quiet` adds the job as add_job's `unsafe_dedupe` mode does (graphile-worker
 * 0.17's add_job, same rows and the same answer to a key already present) without the notify;
 * other modes still go through add_job. framegate_create_generation is replaced by the same
 * function calling it. The wake-up moves out of the transaction: after the create commits, the
 * API process sends one NOTIFY for the creates that committed since its last one (GraphileQueue
 * .notify), so a worker still hears of the job at once; a lost wake-up leaves the job to the
 * workers' polling (QUEUE_POLL_INTERVAL), never loses it: the job row commits with the task.
 *
 * Writing to graphile-worker's _private tables ties this function to its schema: the dependency
 * is pinned to 0.17.x, and the PostgreSQL create tests run jobs added this way.
 */
import { CREATE_GENERATION_FUNCTION_0010 } from "./pg-create-generation.sql.js";

const ADD_JOB_QUIET = `
create or replace function framegate_add_job_quiet(
  identifier text,
  payload json,
  run_at timestamptz,
  max_attempts integer,
  job_key text,
  job_key_mode text
) returns void
language plpgsql volatile as $fn$
begin
  if job_key is null or job_key_mode is distinct from 'unsafe_dedupe' then
    perform graphile_worker.add_job(identifier, payload, run_at => run_at, max_attempts => max_attempts,
      job_key => job_key, job_key_mode => job_key_mode);
    return;
  end if;
  insert into graphile_worker._private_tasks as tasks (identifier)
    values (framegate_add_job_quiet.identifier)
    on conflict do nothing;
  insert into graphile_worker._private_jobs as jobs (task_id, payload, run_at, max_attempts, key, priority)
    select tasks.id, coalesce(framegate_add_job_quiet.payload, '{}'::json),
      coalesce(framegate_add_job_quiet.run_at, now()),
      coalesce(framegate_add_job_quiet.max_attempts::smallint, 25::smallint),
      framegate_add_job_quiet.job_key, 0::smallint
    from graphile_worker._private_tasks as tasks
    where tasks.identifier = framegate_add_job_quiet.identifier
  on conflict (key) do update set revision = jobs.revision + 1, updated_at = now();
end
$fn$;
`;

const ADD_JOB_CALL = "perform graphile_worker.add_job(";

function createGenerationQuiet(): string {
  // The 0010 function word for word, but for the call that adds the submit job.
  if (CREATE_GENERATION_FUNCTION_0010.split(ADD_JOB_CALL).length !== 2) {
    throw new Error("migration 0015: framegate_create_generation's add_job call not found once");
  }
  // Its parameters have add_job's names, so the named arguments of the call stay as they are.
  return CREATE_GENERATION_FUNCTION_0010.replace(ADD_JOB_CALL, "perform framegate_add_job_quiet(");
}

export const CREATE_QUIET_0015 = (): string => ADD_JOB_QUIET + createGenerationQuiet();
