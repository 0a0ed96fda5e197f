/**
 * Test helpers: the real server in-process (packages/server/test/harness.ts), an SDK client for a
 * fresh account, and a small HTTP proxy that can inject answers in front of the server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { startTestServer, type TestServer } from "../../server/test/harness.js";
import { Framegate, type FramegateOptions } from "../src/index.js";

export { startTestServer, type TestServer };

/** Fast polling for tests. */
export const FAST_POLL = { first: 50, min: 100, max: 200 };

export async function clientFor(
  t: TestServer,
  credits = 1000,
  opts: FramegateOptions & { scopes?: string[] } = {},
): Promise<{ client: Framegate; key: string; accountId: string }> {
  const { scopes, ...clientOpts } = opts;
  const account = await t.createAccount(credits, scopes ? { scopes } : {});
  const client = new Framegate({ apiKey: account.key, baseUrl: t.url, pollInterval: FAST_POLL, ...clientOpts });
  return { client, key: account.key, accountId: account.accountId };
}

export interface ProxiedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** What the proxy did: "forwarded", or the injected status. */
  outcome: "forwarded" | number;
}

/**
 * Decides what to do with a request: `undefined` forwards it; `{status, headers, forward}` answers
 * with that status (after forwarding it to the server first, and dropping its answer, when
 * `forward` is true: "the server acted but the client never heard").
 */
export type Injector = (req: {
  method: string;
  path: string;
  index: number;
}) => { status: number; headers?: Record<string, string>; forward?: boolean; code?: string } | undefined;

export class FaultProxy {
  readonly requests: ProxiedRequest[] = [];
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string, inject: Injector): Promise<FaultProxy> {
    let proxy: FaultProxy | undefined;
    const server = createServer((req, res) => {
      void proxy?.handle(req, res, target, inject);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    proxy = new FaultProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  /** Requests for `method path` (path without query). */
  matching(method: string, path: string): ProxiedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path.split("?")[0] === path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse, target: string, inject: Injector) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const index = this.requests.filter((r) => r.method === method && r.path === path).length;
    const action = inject({ method, path, index });
    const record: ProxiedRequest = {
      method,
      path,
      headers: { ...req.headers },
      outcome: action?.status ?? "forwarded",
    };
    this.requests.push(record);
    if (action && !action.forward) {
      const text = JSON.stringify({
        error: { code: action.code ?? codeFor(action.status), message: "injected", requestId: "req_proxy" },
      });
      res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      res.end(text);
      return;
    }
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || name === "host" || name === "connection" || name === "content-length") continue;
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const upstream = await fetch(`${target}${path}`, {
      method,
      headers,
      ...(body.length > 0 ? { body } : {}),
    });
    const upstreamBody = Buffer.from(await upstream.arrayBuffer());
    if (action?.forward) {
      res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      res.end(JSON.stringify({ error: { code: codeFor(action.status), message: "injected after forwarding" } }));
      return;
    }
    const out: Record<string, string> = {};
    upstream.headers.forEach((value, name) => {
      if (name !== "content-length" && name !== "transfer-encoding" && name !== "connection") out[name] = value;
    });
    res.writeHead(upstream.status, out);
    res.end(upstreamBody);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function codeFor(status: number): string {
  if (status === 429) return "rate_limited";
  if (status === 503) return "service_unavailable";
  if (status === 409) return "idempotency_conflict";
  return "internal_error";
}
