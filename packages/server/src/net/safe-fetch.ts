/**
 * SSRF-guarded outbound HTTP client for user-supplied URLs (Files API `url` uploads, webhook delivery).
 *
 * - `checkUrl` on the first URL and on every redirect target (scheme, userinfo, localhost, literal IPs).
 * - The address check happens at CONNECT time: an undici Agent whose connector resolves the host with the
 *   (injectable) lookup and refuses the connection when any resolved address is forbidden, so a name that
 *   resolved public when the URL was accepted but private now (DNS rebinding) cannot reach internal hosts.
 *   Literal-IP hosts, which never go through a lookup, are checked there too. Each call has an Agent of its
 *   own, or shares a GuardedPool: its kept-alive connections were each checked when they were opened, so
 *   reusing one reaches no address the check did not pass.
 * - Redirects are followed manually, each hop re-checked; 301/302/303 switch to GET without a body and
 *   credentials headers are dropped when the origin changes.
 * - One deadline (`timeoutMs`) bounds connect + headers + body; the body is a Node Readable that errors
 *   with OutboundError("too_large") past `maxBytes`.
 * - No cookies, no proxy from the environment, `accept-encoding: identity` unless the caller sets it.
 *
 * Error messages never contain the URL (it may carry tokens) or resolved addresses.
 */
import type { LookupAddress, LookupOptions } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Readable } from "node:stream";
import { Agent, buildConnector, request } from "undici";
import {
  checkUrl,
  defaultLookup,
  type GuardOptions,
  isForbiddenAddress,
  type LookupFn,
  REASON_FORBIDDEN_ADDRESS,
  REASON_FORBIDDEN_RESOLUTION,
} from "./url-guard.js";

export type { LookupFn } from "./url-guard.js";

export type OutboundErrorKind = "blocked" | "timeout" | "too_large" | "http" | "network" | "redirects";

export class OutboundError extends Error {
  readonly kind: OutboundErrorKind;
  readonly status?: number;

  constructor(kind: OutboundErrorKind, message: string, options?: { status?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OutboundError";
    this.kind = kind;
    if (options?.status !== undefined) this.status = options.status;
  }
}

export interface SafeFetchOptions extends GuardOptions {
  /** Largest accepted body in bytes (Content-Length checked up front, streamed bytes counted). */
  maxBytes: number;
  /** Deadline for the whole exchange: connect, redirects, headers and body. */
  timeoutMs: number;
  /** 0 = redirects are not followed (the 3xx is returned as-is). */
  maxRedirects: number;
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: string;
  /** Injectable DNS (tests); default `dns.lookup`. */
  lookup?: LookupFn;
  signal?: AbortSignal;
  /** Connections kept alive between calls; built with the same guard options as this call's. */
  pool?: GuardedPool;
}

/**
 * A guarded Agent shared by many calls with the same guard options (webhook deliveries): idle
 * connections are kept alive and reused instead of a TCP (and TLS) handshake per call. Every new
 * connection goes through the guarded connector; undici unrefs idle sockets, so an open pool does not
 * keep the process alive.
 */
export class GuardedPool {
  readonly agent: Agent;

  constructor(opts: GuardOptions & { timeoutMs: number; lookup?: LookupFn }) {
    this.agent = createGuardedAgent(opts);
  }

  /** Closes idle connections and those in use (their calls fail): for shutdown. */
  async close(): Promise<void> {
    await this.agent.destroy().catch(() => {});
  }
}

export interface SafeResponse {
  /** The final URL, after redirects. */
  url: string;
  status: number;
  headers: Headers;
  /**
   * Body as a Node Readable that errors with OutboundError("too_large") past maxBytes and with
   * OutboundError("timeout") at the deadline. Consume it or destroy it: the connection and the deadline
   * timer are released when it ends or is destroyed (at the latest at the deadline).
   */
  body: Readable;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Request headers that must not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);
const TIMEOUT_CODES = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

export async function safeFetch(url: string, opts: SafeFetchOptions): Promise<SafeResponse> {
  validateOptions(opts);
  const first = checkUrl(url, opts);
  if (!first.ok) throw new OutboundError("blocked", first.reason);

  // One deadline and one abort path for every hop and the body.
  const controller = new AbortController();
  const timeoutError = new OutboundError("timeout", `The request did not complete within ${opts.timeoutMs} ms.`);
  const timer = setTimeout(() => controller.abort(timeoutError), opts.timeoutMs);
  const onCallerAbort = () =>
    controller.abort(new OutboundError("network", "The request was aborted.", { cause: opts.signal?.reason }));
  if (opts.signal?.aborted) onCallerAbort();
  else opts.signal?.addEventListener("abort", onCallerAbort, { once: true });

  const agent = opts.pool?.agent ?? createGuardedAgent(opts);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    clearTimeout(timer);
    opts.signal?.removeEventListener("abort", onCallerAbort);
    // A pooled connection goes back to its pool when its body ends (undici); an aborted one is destroyed.
    if (!opts.pool) agent.destroy().catch(() => {});
  };
  const toError = (err: unknown) => toOutboundError(err, controller.signal);

  let current = first.url;
  let method: "GET" | "POST" = opts.method ?? "GET";
  let body = opts.body;
  const headers = requestHeaders(opts.headers);
  try {
    for (let redirects = 0; ; redirects++) {
      if (controller.signal.aborted) throw controller.signal.reason;
      const res = await request(current, {
        dispatcher: agent,
        method,
        headers,
        body: method === "GET" ? undefined : body,
        signal: controller.signal,
      });
      const location = firstHeader(res.headers.location);
      if (REDIRECT_STATUSES.has(res.statusCode) && location !== undefined && opts.maxRedirects > 0) {
        res.body.on("error", () => {}).destroy();
        if (redirects >= opts.maxRedirects) {
          throw new OutboundError("redirects", `More than ${opts.maxRedirects} redirects.`, {
            status: res.statusCode,
          });
        }
        const next = resolveRedirect(location, current, opts, res.statusCode);
        if (next.origin !== current.origin) {
          for (const name of Object.keys(headers)) if (CREDENTIAL_HEADERS.has(name)) delete headers[name];
        }
        if (res.statusCode === 301 || res.statusCode === 302 || res.statusCode === 303) {
          if (method !== "GET") {
            method = "GET";
            body = undefined;
            delete headers["content-type"];
          }
        }
        current = next;
        continue;
      }

      const declared = Number(firstHeader(res.headers["content-length"]));
      if (Number.isFinite(declared) && declared > opts.maxBytes) {
        res.body.on("error", () => {}).destroy();
        throw tooLarge(opts.maxBytes, res.statusCode);
      }
      return {
        url: current.href,
        status: res.statusCode,
        headers: toHeaders(res.headers),
        body: limitBody(res.body, opts.maxBytes, res.statusCode, release, toError),
      };
    }
  } catch (err) {
    release();
    throw toError(err);
  }
}

/** Reads at most `limit` bytes of the body as UTF-8 text (for logging response snippets), then destroys the
 *  stream. Best effort: a body error (timeout, too large, reset) ends the snippet instead of throwing. */
export async function readSnippet(res: SafeResponse, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    if (limit > 0) {
      for await (const chunk of res.body) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
        chunks.push(buf);
        length += buf.length;
        if (length >= limit) break;
      }
    }
  } catch {
    // Keep what was read.
  } finally {
    res.body.destroy();
  }
  // `stream: true` drops a multi-byte character cut at the limit instead of emitting U+FFFD.
  return new TextDecoder("utf-8").decode(Buffer.concat(chunks).subarray(0, Math.max(0, limit)), { stream: true });
}

// ---------------------------------------------------------------------------------------------------------

function validateOptions(opts: SafeFetchOptions): void {
  const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
  if (!nonNegative(opts.maxBytes)) throw new RangeError("safeFetch: maxBytes must be a non-negative number");
  if (!nonNegative(opts.timeoutMs) || opts.timeoutMs === 0) {
    throw new RangeError("safeFetch: timeoutMs must be a positive number");
  }
  if (!Number.isInteger(opts.maxRedirects) || opts.maxRedirects < 0) {
    throw new RangeError("safeFetch: maxRedirects must be a non-negative integer");
  }
}

/**
 * An Agent whose connector refuses forbidden addresses at connect time: host names are resolved with the
 * guard's lookup and refused if ANY address is forbidden; literal IPs (which Node never looks up) are checked
 * before connecting. TLS verification stays on; no proxy, no cookies (undici `request` has no jar).
 */
function createGuardedAgent(opts: GuardOptions & { timeoutMs: number; lookup?: LookupFn }): Agent {
  const lookup = opts.lookup ?? defaultLookup;
  const guardedLookup: LookupFunction = (hostname, options: LookupOptions, callback) => {
    const done = once(callback);
    const family = options.family === 4 || options.family === 6 ? options.family : undefined;
    try {
      lookup(hostname, family === undefined ? { all: true } : { all: true, family }, (err, addresses) => {
        if (err) return done(err, "", 0);
        if (!Array.isArray(addresses) || addresses.length === 0) {
          return done(lookupError(hostname), "", 0);
        }
        if (!opts.allowPrivateAddresses && addresses.some((a) => isForbiddenAddress(a.address))) {
          return done(new OutboundError("blocked", `Refused to connect: ${REASON_FORBIDDEN_RESOLUTION}`), "", 0);
        }
        if (options.all) return done(null, addresses as LookupAddress[]);
        const [pick] = addresses as [LookupAddress];
        done(null, pick.address, pick.family);
      });
    } catch (err) {
      done(err as NodeJS.ErrnoException, "", 0);
    }
  };
  const connector = buildConnector({ lookup: guardedLookup, timeout: opts.timeoutMs });
  return new Agent({
    connect(options, callback) {
      if (isIP(options.hostname) !== 0 && !opts.allowPrivateAddresses && isForbiddenAddress(options.hostname)) {
        callback(new OutboundError("blocked", `Refused to connect: ${REASON_FORBIDDEN_ADDRESS}`), null);
        return;
      }
      connector(options, callback);
    },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
  });
}

function once<T extends (...args: never[]) => void>(fn: T): T {
  let called = false;
  return ((...args: Parameters<T>) => {
    if (called) return;
    called = true;
    fn(...args);
  }) as T;
}

function lookupError(hostname: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
  err.code = "ENOTFOUND";
  return err;
}

function requestHeaders(input: Record<string, string> | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(input ?? {})) headers[name.toLowerCase()] = value;
  if (headers["accept-encoding"] === undefined) headers["accept-encoding"] = "identity";
  return headers;
}

function resolveRedirect(location: string, current: URL, opts: GuardOptions, status: number): URL {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch {
    throw new OutboundError("http", "The redirect location is not a valid URL.", { status });
  }
  // A fragment in Location is legitimate (it is never sent); drop it instead of refusing.
  next.hash = "";
  const checked = checkUrl(next.href, opts);
  if (!checked.ok) throw new OutboundError("blocked", `Redirect refused: ${checked.reason}`, { status });
  return checked.url;
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
      try {
        headers.append(name, v);
      } catch {
        // A header value the Fetch API refuses (e.g. raw non-Latin-1 bytes) is dropped.
      }
    }
  }
  return headers;
}

function tooLarge(maxBytes: number, status: number): OutboundError {
  return new OutboundError("too_large", `The response body is larger than ${maxBytes} bytes.`, { status });
}

/**
 * Wraps undici's body: counts bytes and errors with too_large past `maxBytes`, maps abort/timeout errors,
 * and calls `release` exactly once when the body ends, errors or is destroyed. Data flows only while the
 * consumer reads. A no-op error listener keeps an unconsumed body that hits the deadline from crashing the
 * process; consumers still see the error (`for await`, `pipeline`, `stream.errored`).
 */
function limitBody(
  src: Readable,
  maxBytes: number,
  status: number,
  release: () => void,
  toError: (err: unknown) => OutboundError,
): Readable {
  let received = 0;
  const out = new Readable({
    read() {
      src.resume();
    },
    destroy(err, callback) {
      src.on("error", () => {}).destroy();
      release();
      callback(err);
    },
  });
  out.on("error", () => {});
  const fail = (err: OutboundError) => {
    if (!out.destroyed) out.destroy(err);
  };
  src.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received > maxBytes) return fail(tooLarge(maxBytes, status));
    if (!out.push(chunk)) src.pause();
  });
  src.on("end", () => {
    release();
    out.push(null);
  });
  src.on("error", (err) => fail(toError(err)));
  src.pause();
  return out;
}

function toOutboundError(err: unknown, signal: AbortSignal): OutboundError {
  // Whatever undici threw after our own abort, the abort reason says why.
  if (signal.aborted && signal.reason instanceof OutboundError) return signal.reason;
  const found = findOutbound(err);
  if (found) return found;
  const code = errorCode(err);
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new OutboundError("timeout", "The request timed out.", { cause: err });
  }
  return new OutboundError("network", code ? `The request failed (${code}).` : "The request failed.", { cause: err });
}

function findOutbound(err: unknown): OutboundError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof OutboundError) return e;
  }
  return undefined;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z0-9_]+$/.test(code) ? code : undefined;
}
