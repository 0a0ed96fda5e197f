/**
 * The admin API's account lifecycle (accounts/lifecycle.ts): GET /admin/v1/accounts/{id}/export
 * and DELETE /admin/v1/accounts/{id}. Behind the admin token middleware that the accounts admin
 * routes mount for /admin/v1/*.
 */
import type { Hono } from "hono";
import type { AppEnv } from "../http/context.js";
import { deleteAccount, exportAccount, type LifecycleDeps } from "./lifecycle.js";

/** Chunks of the export are gathered up to this size before they are written. */
const WRITE_BYTES = 64 * 1024;

/**
 * The export as a byte stream read at the client's pace. The first chunk is produced before
 * answering, so an unknown account is a 404 envelope; an error later can only cut the body
 * short (the status is sent), which leaves invalid JSON rather than a document that looks whole.
 */
async function exportStream(deps: LifecycleDeps, accountId: string): Promise<ReadableStream<Uint8Array>> {
  const chunks = exportAccount(deps, accountId);
  const first = await chunks.next();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (!first.done) controller.enqueue(encoder.encode(first.value));
    },
    async pull(controller) {
      let text = "";
      try {
        while (text.length < WRITE_BYTES) {
          const next = await chunks.next();
          if (next.done) {
            if (text) controller.enqueue(encoder.encode(text));
            controller.close();
            return;
          }
          text += next.value;
        }
      } catch (error) {
        deps.log.error({ accountId, err: error }, "account export failed part way; the body was cut short");
        throw error;
      }
      controller.enqueue(encoder.encode(text));
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

export function mountAccountLifecycleRoutes(app: Hono<AppEnv>, deps: LifecycleDeps) {
  app.get("/admin/v1/accounts/:id/export", async (c) => {
    const id = c.req.param("id");
    const body = await exportStream(deps, id);
    return c.body(body, 200, {
      "Content-Type": "application/json; charset=utf-8",
      "Content-Disposition": `attachment; filename="${id.replace(/[^A-Za-z0-9_-]/g, "")}-export.json"`,
      "Cache-Control": "no-store",
    });
  });

  // 200 when nothing is left to do; 202 when tasks still run (they end on their own, their
  // results are removed after) or some bytes still wait for removal. Repeating it is harmless.
  app.delete("/admin/v1/accounts/:id", async (c) => {
    const deletion = await deleteAccount(deps, c.req.param("id"));
    const done = deletion.pending_tasks.length === 0 && deletion.files_pending === 0;
    return c.json(deletion, done ? 200 : 202);
  });
}
