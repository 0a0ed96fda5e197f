/** `framegate cancel <id>`: ends a task that has not produced its result, and says what became of its credits. */
import type { Task } from "@framegate/sdk";
import { type ApiContext, describeTask } from "./api.js";
import { usageError } from "./output.js";

/** Local check: a task id, so a typo is refused before any request. */
export function checkTaskId(id: string): void {
  if (!/^[A-Za-z0-9_]{1,64}$/.test(id)) throw usageError(`<id> must be a task id such as task_… (got "${id}")`);
}

/**
 * Prints the task's final state (with --json, the task). A task that cannot be cancelled (it has
 * finished, or its upstream cannot stop it) is the API's 409, printed as `not_cancelable` with
 * exit code 1 like every API error.
 */
export async function cancelGeneration(ctx: ApiContext, id: string): Promise<void> {
  const task: Task = await ctx.client.generations.cancel(id, { signal: ctx.signal });
  const refunded = task.reserved_credits - task.final_credits;
  ctx.out.result(task, `${task.id} cancelled; ${refunded} credits refunded\n${describeTask(task)}`);
}
