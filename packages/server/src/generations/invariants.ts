/**
 * The invariants of tasks, for `framegate verify` (ops/verify.ts). Read-only, a page of tasks at
 * a time in id order.
 *
 * - task_credits: the ledger entries of each task match its status (transitions.ts moves credits
 *   only in the transaction that changes the status):
 *   - every task has exactly one reservation, of -reserved_credits;
 *   - queued and processing: nothing charged yet (final_credits 0), no refund, no release;
 *   - succeeded: no refund; 0 <= final_credits <= reserved_credits, and the unused part (if any)
 *     released by exactly one release entry;
 *   - failed (canceled included): final_credits 0 and the reservation refunded exactly once
 *     (nothing to refund for a free task), no release.
 * - stale_jobs: no generation job (submit, poll, finalize) is still queued or running for a task
 *   that ended more than the grace period ago, nor for a task that does not exist. Right after a
 *   cancel, the task's submit job is still queued until it runs and sees the end; the grace keeps
 *   that normal moment out of the report.
 * - result_media: every video and poster of a succeeded task whose retention has not yet purged
 *   them is in storage.
 * - result objects (orphan_objects, with files/invariants.ts): which stored results/… objects a
 *   task still refers to.
 */

import { sql } from "kysely";
import type { Findings } from "../ops/findings.js";
import { pendingJobPages } from "../queue/pending-jobs.js";
import type { Storage } from "../storage/storage.js";
import type { Dialect, Executor } from "../store/db.js";
import type { TasksTable } from "../store/schema.js";
import type { StoredResult } from "./serialize.js";

const PAGE = 500;
/** Storage lookups in flight at once (S3 answers each in a round trip). */
const STAT_CONCURRENCY = 8;
/** Keys of the generation jobs: `submit:<task>` (service.ts), `poll:<task>`, `finalize:<task>` (worker.ts). */
const JOB_KEY = /^(submit|poll|finalize):(.+)$/;

type TaskCredits = Pick<TasksTable, "id" | "status" | "reserved_credits" | "final_credits">;

export async function checkTaskCredits(db: Executor, findings: Findings): Promise<void> {
  const check = findings.check("task_credits", "tasks");
  let after = "";
  for (;;) {
    const rows = await taskCreditsPage(db, after);
    if (rows.length === 0) return;
    // One row per task and entry type (one with type null for a task without entries).
    const tasks = new Map<string, { task: TaskCredits; entries: Map<string, { n: number; total: number }> }>();
    for (const row of rows) {
      let entry = tasks.get(row.id);
      if (!entry) {
        entry = { task: row, entries: new Map() };
        tasks.set(row.id, entry);
      }
      if (row.type !== null) entry.entries.set(row.type, { n: Number(row.n), total: Number(row.total) });
    }
    for (const { task, entries } of tasks.values()) {
      check.checked++;
      for (const problem of creditProblems(task, entries)) {
        findings.violation("task_credits", task.id, `task ${task.id} (${task.status}): ${problem}`);
      }
    }
    after = [...tasks.keys()].at(-1) as string;
  }
}

/**
 * A page of tasks with their ledger entries counted and summed per type, in one statement: the
 * task's status and its entries come from one snapshot even while a server ends tasks (a task
 * read as processing and its refund read a moment later would look refunded too early).
 */
function taskCreditsPage(db: Executor, after: string) {
  const page = db
    .selectFrom("tasks")
    .select(["id", "status", "reserved_credits", "final_credits"])
    .where("id", ">", after)
    .orderBy("id")
    .limit(PAGE)
    .as("t");
  return db
    .selectFrom(page)
    .leftJoin("ledger_entries as l", "l.task_id", "t.id")
    .select([
      "t.id",
      "t.status",
      "t.reserved_credits",
      "t.final_credits",
      "l.type",
      sql<number>`count(l.id)`.as("n"),
      sql<number>`coalesce(sum(l.amount), 0)`.as("total"),
    ])
    .groupBy(["t.id", "t.status", "t.reserved_credits", "t.final_credits", "l.type"])
    .orderBy("t.id")
    .execute();
}

function creditProblems(task: TaskCredits, entries: Map<string, { n: number; total: number }>): string[] {
  const reserved = Number(task.reserved_credits);
  const final = Number(task.final_credits);
  const entry = (type: string) => entries.get(type) ?? { n: 0, total: 0 };
  const problems: string[] = [];
  const times = (n: number) => (n === 1 ? "once" : `${n} times`);

  const reserve = entry("reserve");
  if (reserve.n !== 1) problems.push(`reserved ${times(reserve.n)}, expected once`);
  else if (reserve.total !== -reserved) {
    problems.push(`its reservation entry is ${reserve.total}, expected ${-reserved} (reserved_credits ${reserved})`);
  }
  for (const type of entries.keys()) {
    if (!["reserve", "refund", "release"].includes(type)) problems.push(`has a ${type} entry`);
  }

  const refund = entry("refund");
  const release = entry("release");
  switch (task.status) {
    case "queued":
    case "processing":
      if (final !== 0) problems.push(`final_credits is ${final} before the task ended, expected 0`);
      if (refund.n > 0) problems.push(`refunded ${times(refund.n)} before the task ended`);
      if (release.n > 0) problems.push(`released credits ${times(release.n)} before the task ended`);
      break;
    case "succeeded": {
      if (refund.n > 0) problems.push(`refunded ${times(refund.n)} (${refund.total} credits) although it succeeded`);
      if (final < 0 || final > reserved) problems.push(`final_credits ${final} outside 0..${reserved} (reserved)`);
      const unused = reserved - final;
      if (unused > 0 && (release.n !== 1 || release.total !== unused)) {
        problems.push(`released ${release.total} credits in ${release.n} entries, expected ${unused} in one`);
      }
      if (unused <= 0 && release.n > 0) problems.push(`released ${release.total} credits, expected none`);
      break;
    }
    case "failed":
      if (final !== 0) problems.push(`final_credits is ${final}, expected 0 for a failed task`);
      if (release.n > 0) problems.push(`released credits ${times(release.n)} although it failed`);
      if (reserved > 0 && (refund.n !== 1 || refund.total !== reserved)) {
        problems.push(
          refund.n === 0
            ? `never refunded, expected one refund of ${reserved}`
            : `refunded ${times(refund.n)} (${refund.total} credits), expected once (${reserved})`,
        );
      }
      if (reserved <= 0 && refund.n > 0) problems.push(`refunded ${refund.total} credits, expected none`);
      break;
    default:
      problems.push(`unknown status "${task.status as string}"`);
  }
  return problems;
}

export async function checkStaleJobs(
  db: Executor,
  dialect: Dialect,
  findings: Findings,
  opts: { now: Date; graceMs: number },
): Promise<void> {
  const check = findings.check("stale_jobs", "jobs");
  const endedBefore = new Date(opts.now.getTime() - opts.graceMs).toISOString();
  for await (const page of pendingJobPages(db, dialect)) {
    const generation = page.flatMap((job) => {
      const match = JOB_KEY.exec(job.key);
      return match ? [{ ...job, stage: match[1] as string, taskId: match[2] as string }] : [];
    });
    check.checked += generation.length;
    if (generation.length === 0) continue;
    const tasks = await db
      .selectFrom("tasks")
      .select(["id", "status", "completed_at"])
      .where("id", "in", [...new Set(generation.map((j) => j.taskId))])
      .execute();
    const byId = new Map(tasks.map((t) => [t.id, t]));
    for (const job of generation) {
      const where = `${job.queue === "jobs" ? "table queue" : "graphile-worker"} job ${job.id} (${job.key})`;
      const task = byId.get(job.taskId);
      if (!task) {
        findings.violation("stale_jobs", job.key, `${where} is for task ${job.taskId}, which does not exist`);
        continue;
      }
      const ended = task.status === "succeeded" || task.status === "failed";
      if (ended && task.completed_at !== null && task.completed_at < endedBefore) {
        findings.violation(
          "stale_jobs",
          job.key,
          `${where} is still ${job.running ? "running" : `queued (due ${job.runAt})`} for task ${task.id}, ` +
            `${task.status} at ${task.completed_at}`,
        );
      }
    }
  }
}

export async function checkResultMedia(db: Executor, storage: Storage, findings: Findings): Promise<void> {
  const check = findings.check("result_media", "objects");
  let after = "";
  for (;;) {
    const tasks = await db
      .selectFrom("tasks")
      .select(["id", "result"])
      .where("status", "=", "succeeded")
      .where("result_purged_at", "is", null)
      .where("id", ">", after)
      .orderBy("id")
      .limit(PAGE)
      .execute();
    if (tasks.length === 0) return;
    const wanted: { taskId: string; key: string }[] = [];
    for (const task of tasks) {
      const keys = resultKeys(task.result);
      if (keys === undefined) {
        findings.violation("result_media", task.id, `task ${task.id} (succeeded): its stored result is not readable`);
        continue;
      }
      if (keys.length === 0) findings.violation("result_media", task.id, `task ${task.id} (succeeded) has no media`);
      for (const key of keys) wanted.push({ taskId: task.id, key });
    }
    await forEachLimited(wanted, STAT_CONCURRENCY, async ({ taskId, key }) => {
      check.checked++;
      if (!(await storage.stat(key))) {
        findings.violation("result_media", key, `task ${taskId} (succeeded): ${key} is missing from storage`);
      }
    });
    after = (tasks.at(-1) as { id: string }).id;
  }
}

/** The storage keys of a stored result (videos and posters); undefined when it cannot be read. */
function resultKeys(result: string | null): string[] | undefined {
  if (result === null) return undefined;
  try {
    const parsed = JSON.parse(result) as StoredResult;
    if (!Array.isArray(parsed.media)) return undefined;
    return parsed.media.flatMap((m) => [m.key, ...(m.poster_key ? [m.poster_key] : [])]);
  } catch {
    return undefined;
  }
}

/** Result objects live under `results/<task id>/`. */
export const RESULT_PREFIX = "results/";

/**
 * For stored objects under RESULT_PREFIX: why each is not (or no longer) a task's result, or
 * nothing when a succeeded, unpurged task refers to it.
 */
export async function unreferencedResults(db: Executor, keys: string[]): Promise<Map<string, string>> {
  const taskOf = (key: string) => key.slice(RESULT_PREFIX.length).split("/")[0] ?? "";
  const ids = [...new Set(keys.map(taskOf))];
  const tasks = ids.length
    ? await db
        .selectFrom("tasks")
        .select(["id", "status", "result", "result_purged_at"])
        .where("id", "in", ids)
        .execute()
    : [];
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const out = new Map<string, string>();
  for (const key of keys) {
    const task = byId.get(taskOf(key));
    if (!task) out.set(key, `no task ${taskOf(key)} exists`);
    else if (task.status !== "succeeded") out.set(key, `task ${task.id} is ${task.status}`);
    else if (task.result_purged_at !== null)
      out.set(key, `task ${task.id}'s results were purged at ${task.result_purged_at}`);
    else if (!(resultKeys(task.result) ?? []).includes(key)) out.set(key, `task ${task.id}'s result does not name it`);
  }
  return out;
}

async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
