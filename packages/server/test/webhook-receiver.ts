/**
 * A recording webhook receiver for tests: a plain HTTP server on 127.0.0.1 (ephemeral port, or a
 * port reserved earlier) whose answer to each request is programmable (status, body, delay,
 * hang, redirect). Every request is recorded with its headers, raw body and the answer it got.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface ReceivedRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  path: string;
  /** Lower-case header names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The raw body, exactly as received (signatures are computed over it). */
  body: string;
  receivedAt: number;
  /** The status this receiver answered with (undefined while hanging or when the sender left first). */
  answeredStatus?: number;
  /** True when the response was fully written (the sender could have read a 2xx). */
  answered: boolean;
}

export interface Behaviour {
  /** Default 200. */
  status?: number;
  /** Response body (default "ok"). */
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Never answer (the socket stays open until the sender gives up or the receiver closes). */
  hang?: boolean;
  /** Answer with this status (default 302) and a Location header. */
  redirectTo?: string;
}

export type Program = (req: ReceivedRequest) => Behaviour;

export const ok: Program = () => ({ status: 200 });

/** Answers `status` to the first `n` requests, then 200. */
export function failFirst(n: number, status = 500, body = "failing"): Program {
  return (req) => (req.index < n ? { status, body } : { status: 200 });
}

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** TCP connections accepted (counts even connections that never sent a valid HTTP request). */
  connections = 0;
  private program: Program;
  private readonly sockets = new Set<Socket>();
  private readonly waiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
    program: Program,
  ) {
    this.program = program;
  }

  /** Listens on 127.0.0.1 (port 0 = ephemeral). */
  static async start(program: Program = ok, port = 0): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      void receiver?.handle(req, res);
    });
    server.on("connection", (socket) => {
      if (!receiver) return;
      receiver.connections++;
      receiver.sockets.add(socket);
      socket.on("close", () => receiver?.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    receiver = new WebhookReceiver(server, (server.address() as AddressInfo).port, program);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** URL of a path on this receiver. */
  at(path = "/hook"): string {
    return `${this.url}${path}`;
  }

  setProgram(program: Program): void {
    this.program = program;
  }

  /** Requests answered with a 2xx (fully written). */
  acknowledged(): ReceivedRequest[] {
    return this.requests.filter((r) => r.answered && r.answeredStatus !== undefined && r.answeredStatus < 300);
  }

  /** Parsed JSON bodies. */
  // biome-ignore lint/suspicious/noExplicitAny: webhook payloads are arbitrary JSON
  bodies(): any[] {
    return this.requests.map((r) => JSON.parse(r.body));
  }

  /** Resolves when `predicate` holds (checked on every request and answer); throws after timeoutMs. */
  async waitUntil(predicate: (r: WebhookReceiver) => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `receiver: ${what} not reached after ${timeoutMs} ms (${this.requests.length} requests: ${this.requests
            .map((r) => r.answeredStatus ?? "-")
            .join(",")})`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until at least `n` requests arrived. */
  waitForRequests(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil((r) => r.requests.length >= n, timeoutMs, `${n} requests`);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    const record: ReceivedRequest = {
      index: this.requests.length,
      method: req.method ?? "",
      path: req.url ?? "",
      headers,
      body: Buffer.concat(chunks).toString("utf8"),
      receivedAt: Date.now(),
      answered: false,
    };
    this.requests.push(record);
    const behaviour = this.program(record);
    this.wake();
    if (behaviour.hang) return;
    if (behaviour.delayMs) await new Promise((r) => setTimeout(r, behaviour.delayMs));
    if (res.destroyed || res.writableEnded) return;
    const status = behaviour.redirectTo !== undefined ? (behaviour.status ?? 302) : (behaviour.status ?? 200);
    const body = behaviour.body ?? "ok";
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": String(Buffer.byteLength(body)),
      ...(behaviour.redirectTo !== undefined ? { location: behaviour.redirectTo } : {}),
    });
    record.answeredStatus = status;
    res.end(body, () => {
      record.answered = true;
      this.wake();
    });
  }
}

/** Polls `probe` until it returns a value other than undefined; throws after timeoutMs. */
export async function pollUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  what = "condition",
  intervalMs = 40,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} not reached after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
