/**
 * Load generation with autocannon, and the per-request bodies the create scenarios need. Creates
 * are made unique (prompt, client_request_id, optionally Idempotency-Key) in `setupRequest`, and
 * every id sent and every id answered 202 is recorded, so the ledger check afterwards can match
 * the server's rows to the answers one by one instead of by totals.
 */
import autocannon from "autocannon";
import { serverCpuSeconds } from "./processes.js";

export interface LoadFigures {
  /** Mean of autocannon's per-second samples. */
  rps: number;
  p50: number;
  p99: number;
  /** Responses outside 2xx, and connection errors/timeouts (neither counts as a request served). */
  non2xx: number;
  errors: number;
  statusCounts: Record<string, number>;
  /** Requests sent whose answer never came back (cut off when the run stopped). */
  unanswered: number;
  seconds: number;
  /** Server CPU time (user + system, all threads) per answered request; null when not measured. */
  cpuMicrosPerRequest: number | null;
}

export type LoadRequest = autocannon.Request;

export interface LoadSpec {
  url: string;
  connections: number;
  /** Seconds of load; or `amount` requests in total (then every response is awaited). */
  duration?: number;
  amount?: number;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: Buffer | string;
  requests?: LoadRequest[];
  /** Seconds per request before it counts as a timeout (uploads need more than the default 10). */
  timeout?: number;
  /** The server's process: its CPU time over the run is divided by the requests answered. */
  serverPid?: number | undefined;
}

export async function runLoad(spec: LoadSpec): Promise<LoadFigures> {
  const cpuBefore = serverCpuSeconds(spec.serverPid);
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    ...(spec.amount === undefined ? { duration: spec.duration ?? 10 } : { amount: spec.amount }),
    method: spec.method ?? "GET",
    headers: spec.headers,
    body: spec.body,
    requests: spec.requests,
    timeout: spec.timeout ?? 10,
  });
  const statusCounts: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCounts[code] = stat.count ?? 0;
  const answered = Object.values(statusCounts).reduce((a, b) => a + b, 0);
  const cpuAfter = serverCpuSeconds(spec.serverPid);
  const cpuMicrosPerRequest =
    cpuBefore !== null && cpuAfter !== null && answered > 0
      ? Math.round(((cpuAfter - cpuBefore) * 1e6) / answered)
      : null;
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    statusCounts,
    unanswered: Math.max(0, result.requests.sent - answered),
    seconds: result.duration,
    cpuMicrosPerRequest,
  };
}

/** What one create scenario sent and what it got back, by client_request_id. */
export class CreateTracker {
  readonly sent: string[] = [];
  readonly accepted = new Set<string>();
  private next = 0;

  constructor(
    private readonly prefix: string,
    private readonly apiKey: string,
    private readonly withIdempotencyKey: boolean,
  ) {}

  /** An autocannon request that POSTs a new, unique create each time it is sent. */
  request(): LoadRequest {
    return {
      method: "POST",
      path: "/api/v1/generations",
      setupRequest: (req, context) => this.setup(req, context),
      onResponse: (status, _body, context) => this.answered(status, context),
    };
  }

  /** Builds the next create: a new id, recorded as sent and kept in the connection's context. */
  setup(req: LoadRequest, context: object): LoadRequest {
    const id = `${this.prefix}-${this.next++}`;
    this.sent.push(id);
    (context as { id?: string }).id = id;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.apiKey}`,
      "content-type": "application/json",
    };
    if (this.withIdempotencyKey) headers["idempotency-key"] = id;
    return { ...req, headers, body: createBody(id) };
  }

  /**
   * Records a 202. The context still holds the id its setup stored: autocannon sends one request
   * at a time per connection (no pipelining), and resets the context only when building the next.
   */
  answered(status: number, context: object): void {
    const id = (context as { id?: string }).id;
    if (status === 202 && id) this.accepted.add(id);
  }
}

/**
 * One autocannon request that sends each create as the next account's (round robin over the
 * trackers, one account each), so the creates of a run spread evenly over the accounts. The
 * tracker that built a request is kept in its context, so its answer is recorded by that tracker.
 */
export function roundRobin(trackers: CreateTracker[]): LoadRequest {
  if (trackers.length === 1) return (trackers[0] as CreateTracker).request();
  let next = 0;
  type Context = { tracker?: CreateTracker };
  return {
    method: "POST",
    path: "/api/v1/generations",
    setupRequest: (req, context) => {
      const tracker = trackers[next++ % trackers.length] as CreateTracker;
      (context as Context).tracker = tracker;
      return tracker.setup(req, context);
    },
    onResponse: (status, _body, context) => (context as Context).tracker?.answered(status, context),
  };
}

export function createBody(clientRequestId: string): string {
  return JSON.stringify({
    model: "kling-2-6",
    prompt: `benchmark ${clientRequestId}: a paper boat drifting down a rainy street`,
    params: { duration: "5" },
    client_request_id: clientRequestId,
  });
}

/** A multipart/form-data body with `kind` and one file part, built once and sent as is. */
export function multipartBody(fields: Record<string, string>, file: { name: string; type: string; bytes: Buffer }) {
  const boundary = `----framegate-bench-${Date.now().toString(16)}`;
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
  }
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: ${file.type}\r\n\r\n`,
    ),
    file.bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  );
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}
