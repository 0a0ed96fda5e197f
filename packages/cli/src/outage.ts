/**
 * What a wait says while the server cannot be read: one line on stderr when the reads start
 * failing ("server unreachable (ECONNREFUSED), retrying…") and one when they work again, however
 * many retries happen in between. The wait itself keeps going (the SDK retries with backoff until
 * the task is terminal or the timeout passes), so a restarted server or a dropped link costs the
 * user nothing but the message.
 */
import { APIConnectionError, FramegateError } from "@framegate/sdk";

/** The most specific reason for a failed read: a socket error code, else the HTTP status and code. */
export function outageReason(error: unknown): string {
  if (error instanceof APIConnectionError) {
    let cause: unknown = error.cause;
    for (let depth = 0; cause && depth < 4; depth++) {
      const code = (cause as { code?: unknown }).code;
      if (typeof code === "string" && code) return code;
      cause = (cause as { cause?: unknown }).cause;
    }
    return error.code;
  }
  if (error instanceof FramegateError && error.status !== undefined) return `HTTP ${error.status} ${error.code}`;
  return error instanceof Error ? error.message : String(error);
}

export class OutageNotice {
  private down = false;

  /** @param say writes one line for people (stderr); not called at all with --json. */
  constructor(private readonly say: (line: string) => void) {}

  get unreachable(): boolean {
    return this.down;
  }

  /** A read failed and will be retried: said once per outage. */
  failed(error: unknown): void {
    if (this.down) return;
    this.down = true;
    const what = error instanceof APIConnectionError ? "server unreachable" : "server not answering";
    this.say(`${what} (${outageReason(error)}), retrying…`);
  }

  /** A read worked: ends the outage, if there was one. */
  succeeded(): void {
    if (!this.down) return;
    this.down = false;
    this.say("connection to the server is back");
  }
}
