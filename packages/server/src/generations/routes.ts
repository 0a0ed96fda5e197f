import {
  summarizeIssues,
  type Task,
  type TaskStatus,
  TaskStatusSchema,
  validateGenerationRequest,
} from "@framegate/contract";
import type { Context, Hono } from "hono";
import { z } from "zod";
import { ApiError } from "../errors.js";
import { authOf, requireScope } from "../http/auth.js";
import { readJsonBody } from "../http/body.js";
import type { AppEnv } from "../http/context.js";
import { renderError } from "../http/error-handler.js";
import { fingerprintBody, parseIdempotencyKey } from "../http/idempotency.js";
import { jsonAnswer } from "../http/json-answer.js";
import { parseListQuery } from "../http/pagination.js";
import type { CancelService } from "./cancel.js";
import { afterPreferredWait, type WaitingRoom } from "./live/prefer.js";
import type { ReferenceResolver } from "./references.js";
import type { GenerationService } from "./service.js";

export const GENERATIONS_PATH = "/api/v1/generations";

/** The list's client_request_id filter: as long as the create accepts (an empty one matches nothing, so it is refused). */
const CLIENT_REQUEST_ID = z.string().min(1).max(128);

export function mountGenerationRoutes(
  app: Hono<AppEnv>,
  deps: {
    generations: GenerationService;
    references: ReferenceResolver;
    cancels: CancelService;
    /** Holds requests that carry `Prefer: wait` (generations/live). */
    live: WaitingRoom<Task>;
  },
) {
  app.post(GENERATIONS_PATH, requireScope("generations:create"), async (c) => {
    const { accountId } = authOf(c);
    const idempotencyKey = parseIdempotencyKey(c.req.header("idempotency-key"));
    const body = await readJsonBody(c);
    const validation = validateGenerationRequest(body);
    if (!validation.ok) {
      throw new ApiError("validation_failed", summarizeIssues(validation.issues), { details: validation.issues });
    }
    const references = await deps.references.resolve(
      accountId,
      validation.value.model,
      validation.value.referenceMediaItems,
    );

    const claim = idempotencyKey
      ? {
          scope: { accountId, method: "POST", path: GENERATIONS_PATH, key: idempotencyKey },
          fingerprint: fingerprintBody(body),
        }
      : undefined;
    const outcome = await deps.generations.create(accountId, validation.value, references, claim, (error) =>
      renderError(c, error),
    );
    // Prefer: wait holds a created task (a replayed one too: it answers what the first request
    // would have) until it ends; a refusal (402, 400, …) is answered at once, as stored.
    const prefer = outcome.status === 202 ? c.req.header("prefer") : undefined;
    const waited =
      prefer === undefined ? undefined : await holdCreated(deps, accountId, outcome.body, prefer, c.req.raw.signal);
    return c.body(waited?.body ?? outcome.body, outcome.status as 202, {
      "Content-Type": "application/json",
      ...(outcome.replayed ? { "Idempotent-Replayed": "true" } : {}),
      ...locationHeader(outcome.status, outcome.body),
      ...waited?.headers,
    });
  });

  app.get(GENERATIONS_PATH, requireScope("generations:read"), async (c) => {
    const { accountId } = authOf(c);
    const query = parseListQuery(c, {
      status: { schema: TaskStatusSchema, issue: "must be one of queued, processing, succeeded, failed" },
      client_request_id: { schema: CLIENT_REQUEST_ID, issue: "must be 1 to 128 characters" },
    });
    const page = await deps.generations.list(accountId, {
      limit: query.limit,
      ...(query.startingAfter ? { startingAfter: query.startingAfter } : {}),
      ...(query.filters.status ? { status: query.filters.status as TaskStatus } : {}),
      ...(query.filters.client_request_id ? { clientRequestId: query.filters.client_request_id } : {}),
    });
    return c.json({ object: "list", ...page });
  });

  // Not async: a poll answered from the cache is sent without an await (store/row-cache.ts).
  app.get(`${GENERATIONS_PATH}/:id`, requireScope("generations:read"), (c): Response | Promise<Response> => {
    const { accountId } = authOf(c);
    const taskId = c.req.param("id");
    const prefer = c.req.header("prefer");
    if (prefer !== undefined) return preferredRead(c, deps, accountId, taskId, prefer);
    return jsonAnswer(c, deps.generations.answer(accountId, taskId));
  });

  // Ending a task (and its refund) is a write on generations: the scope that creates them.
  // No body is read; a cancel of the same task again finds it finished (409 not_cancelable).
  app.post(`${GENERATIONS_PATH}/:id/cancel`, requireScope("generations:create"), async (c) => {
    const { accountId } = authOf(c);
    return c.json(await deps.cancels.cancel(accountId, c.req.param("id")));
  });
}

/** GET /generations/{id} with a Prefer header: the task, once it ends or the wait runs out. */
async function preferredRead(
  c: Context<AppEnv>,
  deps: { generations: GenerationService; live: WaitingRoom<Task> },
  accountId: string,
  taskId: string,
  prefer: string,
): Promise<Response> {
  const task = await deps.generations.get(accountId, taskId);
  const read = () => deps.generations.get(accountId, task.id);
  const waited = await afterPreferredWait(deps.live, prefer, task, read, c.req.raw.signal);
  return c.json(waited.task, 200, waited.headers);
}

async function holdCreated(
  deps: { generations: GenerationService; live: WaitingRoom<Task> },
  accountId: string,
  body: string,
  prefer: string,
  signal: AbortSignal,
): Promise<{ body: string; headers: Record<string, string> }> {
  const created = JSON.parse(body) as Task;
  const read = () => deps.generations.get(accountId, created.id);
  const waited = await afterPreferredWait(deps.live, prefer, created, read, signal);
  // Unheld, the body stays the stored one byte for byte (what an idempotent replay promises).
  return { body: waited.task === created ? body : JSON.stringify(waited.task), headers: waited.headers };
}

function locationHeader(status: number, body: string): Record<string, string> {
  if (status !== 202) return {};
  const id = (JSON.parse(body) as { id?: string }).id;
  return id ? { Location: `${GENERATIONS_PATH}/${id}` } : {};
}
