/**
 * Type tests for Task as a union on `status`: checked by `tsc -p tsconfig.test.json` (part of
 * `npm run typecheck`; every `@ts-expect-error` must be needed) and run by vitest as a no-op.
 */
import { describe, expectTypeOf, it } from "vitest";
import type { FailedTask, PendingTask, SucceededTask, Task, TaskError, TaskResult, TaskStatus } from "../src/index.js";

describe("Task narrows on status", () => {
  it("succeeded has a result, failed has an error, the others have neither", () => {
    const _compileOnly = (task: Task) => {
      expectTypeOf(task.status).toEqualTypeOf<TaskStatus>();
      expectTypeOf(task.result).toEqualTypeOf<TaskResult | null>();
      // @ts-expect-error result may be null until the status says otherwise
      task.result.primary_url;

      if (task.status === "succeeded") {
        expectTypeOf(task).toEqualTypeOf<SucceededTask>();
        expectTypeOf(task.result).toEqualTypeOf<TaskResult>();
        expectTypeOf(task.result.primary_url).toEqualTypeOf<string>();
        expectTypeOf(task.error).toEqualTypeOf<null>();
      } else if (task.status === "failed") {
        expectTypeOf(task).toEqualTypeOf<FailedTask>();
        expectTypeOf(task.error).toEqualTypeOf<TaskError>();
        expectTypeOf(task.error.reason).toEqualTypeOf<TaskError["reason"]>();
        expectTypeOf(task.result).toEqualTypeOf<null>();
      } else {
        expectTypeOf(task).toEqualTypeOf<PendingTask>();
        expectTypeOf(task.status).toEqualTypeOf<"queued" | "processing">();
        expectTypeOf(task.result).toEqualTypeOf<null>();
        expectTypeOf(task.error).toEqualTypeOf<null>();
      }

      // Narrowing on the result works the other way round too.
      if (task.result !== null) expectTypeOf(task.status).toEqualTypeOf<"succeeded">();
      if (task.error) expectTypeOf(task.status).toEqualTypeOf<"failed">();
    };
  });

  it("a succeeded task without a result does not compile", () => {
    const base = {
      id: "task_x",
      object: "generation" as const,
      model: "kling-2-6",
      reserved_credits: 30,
      final_credits: 30,
      created_at: "",
      updated_at: "",
      client_request_id: null,
      params: {},
      started_at: null,
      completed_at: null,
      references: [],
    };
    // @ts-expect-error succeeded needs its result
    const _noResult: Task = { ...base, status: "succeeded", result: null, error: null };
    // @ts-expect-error failed needs its error
    const _noError: Task = { ...base, status: "failed", result: null, error: null };
    const _queued: Task = { ...base, status: "queued", result: null, error: null };
  });
});
