/** A minimal Server-Sent Events client for tests: the events, the comments, and the end. */

export interface SseEvent {
  id: string | undefined;
  data: string;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  comments = 0;
  retry: number | undefined;
  /** Resolves when the server ends the stream (or the reader is aborted). */
  readonly ended: Promise<void>;
  private readonly waiters = new Set<() => void>();

  private constructor(
    readonly response: Response,
    private readonly abort: AbortController,
  ) {
    this.ended = this.pump().finally(() => this.notify());
  }

  static async open(url: string, headers: Record<string, string>): Promise<SseReader> {
    const abort = new AbortController();
    const response = await fetch(url, { headers, signal: abort.signal });
    return new SseReader(response, abort);
  }

  get status(): number {
    return this.response.status;
  }

  /** Parsed `data` of every event so far. */
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  tasks(): any[] {
    return this.events.map((e) => JSON.parse(e.data));
  }

  /** Waits until `predicate` holds (re-checked on every event or comment), or the stream ended. */
  async until(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let ended = false;
    void this.ended.then(() => {
      ended = true;
    });
    while (!predicate()) {
      if (ended) throw new Error(`stream ended first; events: ${JSON.stringify(this.events)}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`not reached in ${timeoutMs} ms; events: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 200));
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.abort.abort();
  }

  private notify(): void {
    for (const waiter of this.waiters) waiter();
    this.waiters.clear();
  }

  private async pump(): Promise<void> {
    if (!this.response.body || !this.response.headers.get("content-type")?.startsWith("text/event-stream")) {
      await this.response.text().catch(() => {});
      return;
    }
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of this.response.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          this.block(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
        this.notify();
      }
    } catch {
      // Aborted by close().
    }
  }

  private block(block: string): void {
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) this.comments++;
      else if (line.startsWith("id: ")) id = line.slice(4);
      else if (line.startsWith("data: ")) data.push(line.slice(6));
      else if (line.startsWith("retry: ")) this.retry = Number(line.slice(7));
    }
    if (data.length) this.events.push({ id, data: data.join("\n") });
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it holds (tests never assert on wall-clock limits; this only bounds the wait). */
export async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await sleep(20);
  }
}
