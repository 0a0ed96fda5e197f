/**
 * Upstream status callbacks (Kling's callback_url). The URL carries a signed token naming our
 * task; the body is never trusted: a valid callback only makes the task's next poll happen now.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Hono } from "hono";
import { ApiError } from "../errors.js";
import type { AppEnv } from "../http/context.js";

export const KLING_CALLBACK_PREFIX = "/internal/callbacks/kling/";

export class CallbackTokens {
  constructor(private readonly secret: string) {}

  private mac(taskId: string): string {
    return createHmac("sha256", this.secret).update(`callback|${taskId}`).digest("base64url");
  }

  issue(taskId: string): string {
    return `${taskId}.${this.mac(taskId)}`;
  }

  /** The task id a token names, or undefined when it was not issued by us. */
  verify(token: string): string | undefined {
    const dot = token.lastIndexOf(".");
    if (dot <= 0) return undefined;
    const taskId = token.slice(0, dot);
    if (!/^task_[A-Za-z0-9]{1,64}$/.test(taskId)) return undefined;
    const expected = Buffer.from(this.mac(taskId));
    const given = Buffer.from(token.slice(dot + 1));
    return given.length === expected.length && timingSafeEqual(given, expected) ? taskId : undefined;
  }
}

export function mountCallbackRoutes(
  app: Hono<AppEnv>,
  deps: { tokens: CallbackTokens; onHint: (taskId: string) => Promise<void> },
): void {
  app.post(`${KLING_CALLBACK_PREFIX}:token`, async (c) => {
    const taskId = deps.tokens.verify(c.req.param("token"));
    if (!taskId) throw new ApiError("not_found", "Unknown callback.");
    // The body is not read: whatever it claims, the next poll asks the upstream itself.
    await c.req.raw.body?.cancel().catch(() => {});
    await deps.onHint(taskId);
    return c.json({ received: true });
  });
}
