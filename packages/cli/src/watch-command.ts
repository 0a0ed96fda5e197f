/**
 * `framegate watch <id>`: each status change of a task as it happens, from the server's event
 * stream (the SDK's generations.stream, which resumes a dropped connection by itself). Exit codes
 * follow `wait`: 0 when the task succeeds, 1 when it fails (its credits were refunded), 130 on
 * Ctrl-C. With --json each state is one JSON document on its own line (NDJSON).
 */
import type { Task } from "@framegate/sdk";
import { type ApiContext, describeTask, refundedCredits } from "./api.js";
import { CliError, EXIT_INTERRUPTED, isAbort } from "./output.js";

/** "12:04:05" in local time: when this client heard of the change. */
const clock = (date: Date) => date.toTimeString().slice(0, 8);

export async function watchGeneration(ctx: ApiContext, id: string): Promise<void> {
  const { client, out, signal } = ctx;
  let last: Task | undefined;
  try {
    for await (const task of client.generations.stream(id, { signal })) {
      last = task;
      if (out.json) out.stream.write(`${JSON.stringify(task)}\n`);
      else out.line(`${clock(new Date())}  ${task.id}  ${task.status}`);
    }
  } catch (error) {
    if (isAbort(error)) {
      throw new CliError("interrupted", `stopped watching ${id}`, {
        exitCode: EXIT_INTERRUPTED,
        taskId: id,
        hint: `it keeps running on the server: \`framegate watch ${id}\``,
      });
    }
    throw error;
  }
  // The stream ends after the terminal state; one that ended sooner is read once more.
  const final =
    last && (last.status === "succeeded" || last.status === "failed")
      ? last
      : await client.generations.retrieve(id, { signal });
  if (final.status === "failed") {
    out.line(`${final.id} failed: its ${refundedCredits(final)} credits were refunded to your balance`);
    throw new CliError(final.error?.code ?? "generation_failed", final.error?.message ?? "The generation failed.", {
      taskId: final.id,
      ...(final.error?.reason ? { reason: final.error.reason } : {}),
    });
  }
  if (final.status !== "succeeded") {
    throw new CliError("watch_ended", `the event stream of ${id} ended while it was ${final.status}`, {
      taskId: id,
      hint: `follow it again with \`framegate watch ${id}\``,
    });
  }
  out.line(describeTask(final));
}
