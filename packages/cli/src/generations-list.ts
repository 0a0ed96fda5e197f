/** `framegate list`: the account's generation tasks, newest first, as a table or --json. */
import type { Task, TaskStatus } from "@framegate/sdk";
import type { ApiContext } from "./api.js";
import { usageError } from "./output.js";
import { collect, formatTable, MAX_PAGE_SIZE, parseLimit } from "./pages.js";

export const TASK_STATUSES: readonly TaskStatus[] = ["queued", "processing", "succeeded", "failed"];

export interface ListOptions {
  status?: string;
  clientRequestId?: string;
  limit?: string;
  startingAfter?: string;
}

/** Local checks of `list`: everything is refused before a request. */
export function checkList(opts: ListOptions): { limit: number; status: TaskStatus | undefined } {
  if (opts.status !== undefined && !TASK_STATUSES.includes(opts.status as TaskStatus)) {
    throw usageError(`--status must be one of ${TASK_STATUSES.join(", ")} (got "${opts.status}")`);
  }
  if (opts.clientRequestId !== undefined && (opts.clientRequestId.length < 1 || opts.clientRequestId.length > 128)) {
    throw usageError("--client-request-id must be 1 to 128 characters");
  }
  if (opts.startingAfter !== undefined && !/^[A-Za-z0-9_]{1,64}$/.test(opts.startingAfter)) {
    throw usageError(`--starting-after must be a task id (got "${opts.startingAfter}")`);
  }
  return { limit: parseLimit(opts.limit), status: opts.status as TaskStatus | undefined };
}

/** What the credits column says: charged, reserved while running, or refunded on failure. */
function creditsCell(task: Task): string {
  if (task.status === "succeeded") return String(task.final_credits);
  if (task.status === "failed") return `${task.reserved_credits - task.final_credits} refunded`;
  return `${task.reserved_credits} reserved`;
}

function paramsCell(task: Task): string {
  const p = task.params ?? {};
  return [p.duration && `${p.duration}s`, p.aspect_ratio, p.sound === "true" ? "sound" : undefined]
    .filter(Boolean)
    .join(" ");
}

export async function listGenerations(ctx: ApiContext, opts: ListOptions): Promise<void> {
  const { limit, status } = checkList(opts);
  const list = await collect(
    ctx.client.generations.list(
      {
        limit: Math.min(limit, MAX_PAGE_SIZE),
        ...(status ? { status } : {}),
        ...(opts.clientRequestId !== undefined ? { clientRequestId: opts.clientRequestId } : {}),
        ...(opts.startingAfter ? { startingAfter: opts.startingAfter } : {}),
      },
      { signal: ctx.signal },
    ),
    limit,
  );
  if (list.data.length === 0) {
    ctx.out.result(list, status || opts.clientRequestId !== undefined ? "no matching tasks" : "no tasks");
    return;
  }
  const rows = list.data.map((t) => [
    t.id,
    t.error ? `${t.status} (${t.error.reason})` : t.status,
    t.model,
    paramsCell(t),
    creditsCell(t),
    t.created_at,
    t.client_request_id ?? "-",
  ]);
  const table = formatTable(["ID", "STATUS", "MODEL", "PARAMS", "CREDITS", "CREATED", "CLIENT REQUEST ID"], rows);
  const last = list.data[list.data.length - 1];
  const same = [
    status ? ` --status ${status}` : "",
    opts.clientRequestId !== undefined ? ` --client-request-id ${JSON.stringify(opts.clientRequestId)}` : "",
    opts.limit ? ` --limit ${limit}` : "",
  ].join("");
  const more = list.has_more && last ? `\n… more: framegate list${same} --starting-after ${last.id}` : "";
  ctx.out.result(list, `${table}${more}`);
}
