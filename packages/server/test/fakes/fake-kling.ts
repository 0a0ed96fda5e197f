/**
 * A fake of Kling's official API (kling-upstreams §1) for contract and integration tests: a real
 * HTTP server on 127.0.0.1 (ephemeral port) that speaks the documented protocol, quirks included.
 *
 * - Auth: `Authorization: Bearer <HS256 JWT>` signed with the secret key, iss = access key,
 *   exp/nbf honoured against `now()`; 401 with code 1001 (no header), 1002 (invalid),
 *   1003 (not yet valid), 1004 (expired).
 * - POST /v1/videos/{text2video|image2video}: validates the body (model_name, duration as a
 *   string "5"/"10", sound "on"/"off", mode, aspect_ratio for t2v only, cfg_scale refused for
 *   v2.x, image as an http(s) URL or raw base64 JPEG/PNG with no data: prefix), enforces unique
 *   external_task_id and the concurrency limit (429 / 1303), answers with an 18-digit string id.
 * - GET /v1/videos/{subpath}/{task_id | external_task_id}: only on the sub-path the task was
 *   created on (another one → 404 / 1203). GET /v1/videos/{subpath}?pageNum&pageSize
 *   [&external_task_id] lists tasks (`data` is an array there).
 * - Tasks go submitted → processing → succeed|failed on timers; failed tasks keep code 0 /
 *   "SUCCEED" with the reason in task_status_msg. Results point at GET /videos/<task_id>.mp4 on
 *   this server (a real MP4 rendered with ffmpeg, with an audio track when sound was on).
 * - callback_url: POSTed the bare task object (no envelope) on every status change.
 * - A programmable fault script (see FakeKlingFault), and prompt directives for tests that go
 *   through the public API: `[kling:fail=<task_status_msg>]`, `[kling:video=404|html]`,
 *   `[kling:after=<ms>]` (time to finish).
 *
 * Validation beyond the docs (flagged "strict" below) is deliberate: the fake refuses what our
 * adapter must never send (cfg_scale, aspect_ratio on i2v, sound on with std, data: prefixes).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { errors as joseErrors, jwtVerify } from "jose";
import { makeVideo } from "../fixtures/media.js";

export type FakeKlingSubpath = "text2video" | "image2video";
export type FakeKlingStatus = "submitted" | "processing" | "succeed" | "failed";
export type FakeKlingEndpoint = "create" | "query" | "list" | "video" | "api" | "any";

/** How a created task ends. */
export interface FakeKlingOutcome {
  /** Default "succeed". */
  status?: "succeed" | "failed";
  /** task_status_msg of a failed task (e.g. "Image pixel is invalid"). */
  message?: string;
  /** The result URL serves the MP4 ("ok"), 404s, or serves an HTML page with status 200. */
  video?: "ok" | "404" | "html";
  /** Override the fake's timings for this task. */
  processingAfterMs?: number;
  finishAfterMs?: number;
  /** Never finishes on its own (use `advance`). */
  manual?: boolean;
  finalUnitDeduction?: string;
}

export type FakeKlingFault =
  /** A service error: any code with any HTTP status (e.g. 1102 with 429). */
  | { type: "error"; code: number; httpStatus: number; message?: string; retryAfter?: string }
  /** 401 / 1002 "Authorization signature is invalid" although the token is fine (intermittent 401). */
  | { type: "unauthorized" }
  /** Never answer (until the client gives up or the fake closes). */
  | { type: "hang" }
  /** Drop the connection without an answer (after the request was received). */
  | { type: "reset" }
  /** Answer normally after `ms`. */
  | { type: "delay"; ms: number }
  /** Status (default 200) with a body that is not valid JSON (default a truncated object). */
  | { type: "malformed"; httpStatus?: number; body?: string }
  /** Any raw answer (e.g. a proxy's HTML 502). */
  | { type: "raw"; httpStatus: number; body: string; headers?: Record<string, string> }
  /** Normal answer, with `data` wrapped in an array (after `decoys` other tasks). */
  | { type: "dataArray"; decoys?: number }
  /** Normal answer, with task_id written as a bare JSON number. */
  | { type: "numericTaskId" }
  /** A normal answer whose code-0 envelope carries this `data` instead (unexpected shapes). */
  | { type: "data"; data: unknown }
  /** create: the task IS created, then the answer is replaced by `answer` (lost answers, 5xx after commit). */
  | { type: "acceptThen"; answer: FakeKlingFault }
  /** create: normal answer; the created task ends with this outcome. */
  | { type: "outcome"; outcome: FakeKlingOutcome };

export interface FakeKlingRule {
  /** Which requests the rule applies to; default "api" (every /v1 call). */
  on?: FakeKlingEndpoint;
  /** Only for this sub-path. */
  subpath?: FakeKlingSubpath;
  /** How many matching requests it applies to (default 1; Infinity for all). */
  times?: number;
  fault: FakeKlingFault;
}

export interface FakeKlingRequest {
  index: number;
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  endpoint: FakeKlingEndpoint;
  /** Lower-case names. */
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body (undefined when empty or not JSON). */
  body: Record<string, unknown> | undefined;
  /** The verified JWT's header and claims, when auth passed. */
  jwt?: { header: Record<string, unknown>; claims: Record<string, unknown> };
  /** The fault applied, if any. */
  fault?: FakeKlingFault["type"];
  /** What the fake answered. */
  status?: number;
  code?: number;
  at: number;
}

export interface FakeKlingTask {
  taskId: string;
  subpath: FakeKlingSubpath;
  externalTaskId: string | undefined;
  /** The create body exactly as received. */
  body: Record<string, unknown>;
  status: FakeKlingStatus;
  statusMsg: string;
  outcome: FakeKlingOutcome;
  callbackUrl: string | undefined;
  createdAt: number;
  updatedAt: number;
  finalUnitDeduction: string;
  /** Status history (for assertions). */
  history: FakeKlingStatus[];
}

export interface FakeKlingCallback {
  url: string;
  taskId: string;
  status: FakeKlingStatus;
  body: Record<string, unknown>;
  /** HTTP status of the receiver's answer, or the delivery error. */
  answeredStatus?: number;
  error?: string;
}

export interface FakeKlingOptions {
  accessKey?: string;
  secretKey?: string;
  /** Time after create at which a task turns processing (default 30 ms) and finishes (default 150 ms). */
  processingAfterMs?: number;
  finishAfterMs?: number;
  /** At most this many tasks submitted|processing; creates beyond → 429 / 1303. */
  concurrencyLimit?: number;
  /** Clock for JWT checks and timestamps (epoch ms). */
  now?: () => number;
  /** Serve this file as every result instead of rendering one. */
  videoPath?: string;
  /** Fetch image URLs at create and refuse (1201) what is not a JPEG/PNG. Default false. */
  fetchImageUrls?: boolean;
  /** Outcome of tasks with no scripted outcome or directive (default succeed). */
  defaultOutcome?: FakeKlingOutcome;
  /** Seed the random task ids (they are still 18-digit strings). */
  idPrefix?: string;
}

export interface FakeKling {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  accessKey: string;
  secretKey: string;
  requests: FakeKlingRequest[];
  /** By Kling task id. */
  tasks: Map<string, FakeKlingTask>;
  callbacks: FakeKlingCallback[];
  /** Appends fault rules; each request consumes the first rule that matches it. */
  script(...rules: FakeKlingRule[]): void;
  clearScript(): void;
  /** Rules not yet used up. */
  pendingRules(): number;
  /** Moves a task to `status` now (firing the callback); finished tasks stop their timers. */
  advance(taskId: string, status: FakeKlingStatus, message?: string): void;
  /** Tasks currently holding a concurrency slot (submitted or processing). */
  running(): number;
  /** The task created with this external_task_id. */
  taskByExternalId(externalTaskId: string): FakeKlingTask | undefined;
  /** API requests (not video downloads) of one endpoint kind. */
  calls(endpoint?: FakeKlingEndpoint): FakeKlingRequest[];
  /** Resolves once every callback sent so far got an answer (or failed). */
  callbacksSettled(): Promise<void>;
  close(): Promise<void>;
}

const MODEL_NAMES = new Set([
  "kling-v1",
  "kling-v1-5",
  "kling-v1-6",
  "kling-v2-master",
  "kling-v2-1",
  "kling-v2-1-master",
  "kling-v2-5-turbo",
  "kling-v2-6",
  "kling-v3",
]);
const ASPECT_RATIOS = new Set(["16:9", "9:16", "1:1"]);
const MAX_BODY_BYTES = 25 * 1024 * 1024;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const VIDEO_SIZES: Record<string, { width: number; height: number }> = {
  "1:1": { width: 96, height: 96 },
  "16:9": { width: 128, height: 72 },
  "9:16": { width: 72, height: 128 },
};

class Reject extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeKling(opts: FakeKlingOptions = {}): Promise<FakeKling> {
  const accessKey = opts.accessKey ?? `ak_fake_${randomBytes(8).toString("hex")}`;
  const secretKey = opts.secretKey ?? `sk_fake_${randomBytes(16).toString("hex")}`;
  const key = new TextEncoder().encode(secretKey);
  const now = opts.now ?? Date.now;
  const processingAfterMs = opts.processingAfterMs ?? 30;
  const finishAfterMs = opts.finishAfterMs ?? 150;
  const requests: FakeKlingRequest[] = [];
  const tasks = new Map<string, FakeKlingTask>();
  const byExternalId = new Map<string, FakeKlingTask>();
  const callbacks: FakeKlingCallback[] = [];
  const callbackChains = new Map<string, Promise<void>>();
  let rules: Array<FakeKlingRule & { left: number }> = [];
  const timers = new Set<NodeJS.Timeout>();
  const taskTimers = new Map<string, NodeJS.Timeout[]>();
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  let closed = false;
  let workDir: string | undefined;
  const renders = new Map<string, Promise<string>>();
  let baseUrl = "";

  const later = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, ms);
    t.unref();
    timers.add(t);
    return t;
  };

  const newTaskId = (): string => {
    for (;;) {
      const digits = `${opts.idPrefix ?? "8"}${Array.from(randomBytes(24), (b) => String(b % 10)).join("")}`.slice(
        0,
        18,
      );
      // Keep it a string that a JS number cannot hold exactly.
      if (String(Number(digits)) !== digits && !tasks.has(digits)) return digits;
    }
  };

  const running = () => [...tasks.values()].filter((t) => t.status === "submitted" || t.status === "processing").length;

  const taskView = (t: FakeKlingTask): Record<string, unknown> => ({
    task_id: t.taskId,
    task_status: t.status,
    task_status_msg: t.statusMsg,
    task_info: t.externalTaskId !== undefined ? { external_task_id: t.externalTaskId } : {},
    ...(t.status === "succeed"
      ? {
          task_result: {
            videos: [
              {
                id: `${t.taskId.slice(0, 12)}000001`,
                url: `${baseUrl}/videos/${t.taskId}.mp4`,
                duration: String(t.body.duration ?? "5"),
              },
            ],
          },
        }
      : {}),
    watermark_info: { enabled: false },
    ...(t.status === "succeed" || t.status === "failed" ? { final_unit_deduction: t.finalUnitDeduction } : {}),
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  });

  const sendCallback = (t: FakeKlingTask): void => {
    if (!t.callbackUrl) return;
    const record: FakeKlingCallback = { url: t.callbackUrl, taskId: t.taskId, status: t.status, body: taskView(t) };
    callbacks.push(record);
    const previous = callbackChains.get(t.taskId) ?? Promise.resolve();
    const next = previous.then(async () => {
      try {
        const res = await fetch(record.url, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(record.body),
          signal: AbortSignal.timeout(5000),
        });
        record.answeredStatus = res.status;
        await res.arrayBuffer().catch(() => undefined);
      } catch (err) {
        record.error = (err as Error).message;
      }
    });
    callbackChains.set(t.taskId, next);
  };

  const setStatus = (t: FakeKlingTask, status: FakeKlingStatus, message?: string): void => {
    if (t.status === status && message === undefined) return;
    t.status = status;
    t.statusMsg = status === "failed" ? (message ?? t.outcome.message ?? "Task failed") : "";
    t.updatedAt = now();
    t.history.push(status);
    if (status === "failed" || status === "succeed") {
      for (const timer of taskTimers.get(t.taskId) ?? []) clearTimeout(timer);
      taskTimers.delete(t.taskId);
    }
    sendCallback(t);
  };

  const units = (body: Record<string, unknown>): string => {
    const seconds = body.duration === "10" ? 10 : 5;
    return String((seconds / 5) * (body.sound === "on" ? 2 : 1));
  };

  // ---------------------------------------------------------------- request handling

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ code: 5000, message: `fake-kling bug: ${(err as Error).message}`, request_id: "" }));
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          reject(new Reject(413, 1200, "request body too large"));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      req.once("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.once("error", reject);
    });

  const endpointOf = (method: string, p: string): { endpoint: FakeKlingEndpoint; subpath?: FakeKlingSubpath } => {
    if (p.startsWith("/videos/")) return { endpoint: "video" };
    const m = /^\/v1\/videos\/(text2video|image2video)(?:\/([^/]+))?\/?$/.exec(p);
    if (!m) return { endpoint: "api" };
    const subpath = m[1] as FakeKlingSubpath;
    if (method === "POST" && !m[2]) return { endpoint: "create", subpath };
    if (method === "GET" && m[2]) return { endpoint: "query", subpath };
    if (method === "GET") return { endpoint: "list", subpath };
    return { endpoint: "api", subpath };
  };

  const takeRule = (endpoint: FakeKlingEndpoint, subpath: FakeKlingSubpath | undefined): FakeKlingFault | undefined => {
    for (const rule of rules) {
      const createOnly = rule.fault.type === "acceptThen" || rule.fault.type === "outcome";
      const on = rule.on ?? (createOnly ? "create" : "api");
      const matches = on === "any" || on === endpoint || (on === "api" && endpoint !== "video") || false;
      if (!matches || (rule.subpath && rule.subpath !== subpath)) continue;
      if (createOnly && endpoint !== "create") continue;
      rule.left--;
      if (rule.left <= 0) rules = rules.filter((r) => r !== rule);
      return rule.fault;
    }
    return undefined;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    let rawBody = "";
    try {
      rawBody = await readBody(req);
    } catch (err) {
      if (err instanceof Reject) return sendJson(res, err.httpStatus, { code: err.code, message: err.message });
      return;
    }
    let body: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = rawBody ? JSON.parse(rawBody) : undefined;
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) body = parsed as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const { endpoint, subpath } = endpointOf(method, url.pathname);
    const record: FakeKlingRequest = {
      index: requests.length,
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      endpoint,
      headers,
      rawBody,
      body,
      at: now(),
    };
    requests.push(record);

    const answer = (status: number, payload: unknown, shape?: FakeKlingFault): void => {
      record.status = status;
      if (payload && typeof payload === "object" && "code" in payload) record.code = (payload as { code: number }).code;
      let data = (payload as { data?: unknown }).data;
      if (shape?.type === "dataArray" && data !== undefined) {
        const decoys = Array.from({ length: shape.decoys ?? 1 }, () => ({
          task_id: newTaskId(),
          task_status: "processing",
          task_status_msg: "",
          task_info: { external_task_id: `decoy_${randomBytes(4).toString("hex")}` },
          created_at: now(),
          updated_at: now(),
        }));
        data = [...decoys, ...(Array.isArray(data) ? data : [data])];
      }
      if (shape?.type === "data") data = shape.data;
      const envelope = data === undefined ? payload : { ...(payload as object), data };
      let text = JSON.stringify(envelope);
      if (shape?.type === "numericTaskId") text = text.replace(/"task_id":"(\d+)"/g, '"task_id":$1');
      res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
      res.end(text);
    };
    const ok = (data: unknown, shape?: FakeKlingFault) =>
      answer(200, { code: 0, message: "SUCCEED", request_id: randomUUID(), data }, shape);
    const fail = (status: number, code: number, message: string) =>
      answer(status, { code, message, request_id: randomUUID() });

    // Faults that replace the answer come before anything else.
    let fault = takeRule(endpoint, subpath);
    if (fault) record.fault = fault.type;
    if (fault?.type === "delay") {
      await sleep(fault.ms);
      if (closed) return;
      fault = undefined;
    }
    if (fault && (await applyReplacingFault(fault, req, res, record))) return;

    if (endpoint === "video") return serveVideo(url.pathname, res, record);

    try {
      record.jwt = await verifyAuth(headers.authorization);
    } catch (err) {
      if (err instanceof Reject) return fail(err.httpStatus, err.code, err.message);
      throw err;
    }

    try {
      if (endpoint === "create" && subpath) {
        const task = await createTask(subpath, body, rawBody, fault);
        if (fault?.type === "acceptThen") {
          record.fault = "acceptThen";
          if (await applyReplacingFault(fault.answer, req, res, record)) return;
        }
        return ok(
          {
            task_id: task.taskId,
            task_status: task.status,
            task_info: task.externalTaskId !== undefined ? { external_task_id: task.externalTaskId } : {},
            created_at: task.createdAt,
            updated_at: task.updatedAt,
          },
          fault,
        );
      }
      if (endpoint === "query" && subpath) {
        const id = decodeURIComponent(url.pathname.split("/").pop() ?? "");
        const task = findTask(subpath, id);
        if (!task) return fail(404, 1203, "Task not found");
        return ok(taskView(task), fault);
      }
      if (endpoint === "list" && subpath) {
        const pageNum = Number(url.searchParams.get("pageNum") ?? "1");
        const pageSize = Number(url.searchParams.get("pageSize") ?? "30");
        if (!Number.isInteger(pageNum) || pageNum < 1 || pageNum > 1000)
          throw new Reject(400, 1201, "pageNum is invalid");
        if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 500)
          throw new Reject(400, 1201, "pageSize is invalid");
        const external = url.searchParams.get("external_task_id");
        const all = [...tasks.values()]
          .filter((t) => t.subpath === subpath && (external === null || t.externalTaskId === external))
          .sort((a, b) => b.createdAt - a.createdAt);
        return ok(all.slice((pageNum - 1) * pageSize, pageNum * pageSize).map(taskView), fault);
      }
      if (url.pathname.startsWith("/v1/videos/text2video") || url.pathname.startsWith("/v1/videos/image2video")) {
        return fail(404, 1202, "Request method is not supported");
      }
      return fail(404, 1203, "Resource does not exist");
    } catch (err) {
      if (err instanceof Reject) return fail(err.httpStatus, err.code, err.message);
      throw err;
    }
  }

  /** Writes the answer for faults that replace it; false when the fault only shapes a normal answer. */
  async function applyReplacingFault(
    fault: FakeKlingFault,
    req: IncomingMessage,
    res: ServerResponse,
    record: FakeKlingRequest,
  ): Promise<boolean> {
    switch (fault.type) {
      case "error": {
        const headers: Record<string, string> = { "Content-Type": "application/json; charset=utf-8" };
        if (fault.retryAfter !== undefined) headers["Retry-After"] = fault.retryAfter;
        record.status = fault.httpStatus;
        record.code = fault.code;
        res.writeHead(fault.httpStatus, headers);
        res.end(
          JSON.stringify({
            code: fault.code,
            message: fault.message ?? `injected error ${fault.code}`,
            request_id: randomUUID(),
          }),
        );
        return true;
      }
      case "unauthorized":
        record.status = 401;
        record.code = 1002;
        res.writeHead(401, { "Content-Type": "application/json; charset=utf-8" });
        res.end(
          JSON.stringify({ code: 1002, message: "Authorization signature is invalid", request_id: randomUUID() }),
        );
        return true;
      case "hang":
        hanging.add(res);
        res.once("close", () => hanging.delete(res));
        return true;
      case "reset":
        req.socket.destroy();
        return true;
      case "malformed":
        record.status = fault.httpStatus ?? 200;
        res.writeHead(record.status, { "Content-Type": "application/json; charset=utf-8" });
        res.end(fault.body ?? '{"code":0,"message":"SUCCEED","data":{"task_id":"86728374175');
        return true;
      case "raw":
        record.status = fault.httpStatus;
        res.writeHead(fault.httpStatus, { "Content-Type": "text/html; charset=utf-8", ...(fault.headers ?? {}) });
        res.end(fault.body);
        return true;
      default:
        return false;
    }
  }

  async function verifyAuth(header: string | undefined): Promise<FakeKlingRequest["jwt"]> {
    if (!header) throw new Reject(401, 1001, "Authorization is empty");
    const m = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header);
    if (!m) throw new Reject(401, 1002, "Authorization signature is invalid");
    try {
      const { payload, protectedHeader } = await jwtVerify(m[1] as string, key, {
        algorithms: ["HS256"],
        currentDate: new Date(now()),
        requiredClaims: ["iss", "exp", "nbf"],
      });
      if (payload.iss !== accessKey) throw new Reject(401, 1002, "Authorization signature is invalid");
      return {
        header: protectedHeader as unknown as Record<string, unknown>,
        claims: payload as unknown as Record<string, unknown>,
      };
    } catch (err) {
      if (err instanceof Reject) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new Reject(401, 1004, "Authorization is expired");
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === "nbf") {
        throw new Reject(401, 1003, "Authorization is not yet valid");
      }
      throw new Reject(401, 1002, "Authorization signature is invalid");
    }
  }

  function findTask(subpath: FakeKlingSubpath, id: string): FakeKlingTask | undefined {
    const byId = tasks.get(id);
    if (byId) return byId.subpath === subpath ? byId : undefined;
    const byExternal = byExternalId.get(id);
    return byExternal && byExternal.subpath === subpath ? byExternal : undefined;
  }

  async function createTask(
    subpath: FakeKlingSubpath,
    body: Record<string, unknown> | undefined,
    rawBody: string,
    fault: FakeKlingFault | undefined,
  ): Promise<FakeKlingTask> {
    if (!body) throw new Reject(400, 1200, rawBody ? "Request body is not valid JSON" : "Request body is empty");
    const bad = (message: string) => new Reject(400, 1201, message);
    const str = (name: string) => {
      const v = body[name];
      if (v !== undefined && typeof v !== "string") throw bad(`${name} must be a string`);
      return v as string | undefined;
    };
    const model = str("model_name") ?? "kling-v1"; // the old `model` field does not count: default v1
    if (!MODEL_NAMES.has(model)) throw bad(`model_name ${model} is invalid`);
    const prompt = str("prompt");
    if (prompt !== undefined && [...prompt].length > 2500) throw bad("prompt is too long");
    if (subpath === "text2video" && !prompt) throw bad("prompt is required");
    const negative = str("negative_prompt");
    if (negative !== undefined && [...negative].length > 2500) throw bad("negative_prompt is too long");
    const duration = body.duration === undefined ? "5" : body.duration;
    if (typeof duration !== "string") throw bad("duration must be a string");
    const durations = model === "kling-v3" ? range(3, 15) : ["5", "10"];
    if (!durations.includes(duration)) throw bad(`duration ${duration} is not supported by ${model}`);
    const mode = str("mode") ?? "std";
    if (mode !== "std" && mode !== "pro") throw bad(`mode ${mode} is invalid`);
    const sound = str("sound") ?? "off";
    if (sound !== "on" && sound !== "off") throw bad(`sound ${sound} is invalid`);
    // strict: std is silent only on 2.6 (capability map).
    if (sound === "on" && mode === "std") throw bad(`model/mode(${model}/std) is not supported with sound on`);
    // strict: v2.x does not support cfg_scale.
    if (body.cfg_scale !== undefined && model.startsWith("kling-v2"))
      throw bad(`cfg_scale is not supported by ${model}`);
    const aspect = str("aspect_ratio");
    if (subpath === "text2video" && aspect !== undefined && !ASPECT_RATIOS.has(aspect)) {
      throw bad(`aspect_ratio ${aspect} is invalid`);
    }
    // strict: the shape of an i2v video comes from the image.
    if (subpath === "image2video" && aspect !== undefined) throw bad("aspect_ratio is not supported by image2video");
    if (subpath === "image2video") {
      const image = str("image");
      const tail = str("image_tail");
      if (!image && !tail) throw bad("image is required");
      if (image) await checkImage(image, "image");
      if (tail) await checkImage(tail, "image_tail");
      if (tail && sound === "on") throw bad("image_tail is not supported with sound on");
    }
    const callbackUrl = str("callback_url");
    if (callbackUrl && !/^https?:\/\//.test(callbackUrl)) throw bad("callback_url is invalid");
    const external = str("external_task_id");
    if (external && byExternalId.has(external)) throw bad(`external_task_id ${external} already exists`);
    if (opts.concurrencyLimit !== undefined && running() >= opts.concurrencyLimit) {
      throw new Reject(429, 1303, "parallel task over resource pack limit");
    }

    const outcome: FakeKlingOutcome = {
      ...(opts.defaultOutcome ?? {}),
      ...directives(prompt ?? ""),
      ...(fault?.type === "outcome" ? fault.outcome : {}),
    };
    const createdAt = now();
    const task: FakeKlingTask = {
      taskId: newTaskId(),
      subpath,
      externalTaskId: external || undefined,
      body,
      status: "submitted",
      statusMsg: "",
      outcome,
      callbackUrl: callbackUrl || undefined,
      createdAt,
      updatedAt: createdAt,
      finalUnitDeduction: outcome.finalUnitDeduction ?? (outcome.status === "failed" ? "0" : units(body)),
      history: ["submitted"],
    };
    tasks.set(task.taskId, task);
    if (task.externalTaskId) byExternalId.set(task.externalTaskId, task);
    sendCallback(task);
    if (!outcome.manual) {
      const toProcessing = outcome.processingAfterMs ?? processingAfterMs;
      const toDone = Math.max(toProcessing, outcome.finishAfterMs ?? finishAfterMs);
      taskTimers.set(task.taskId, [
        later(toProcessing, () => {
          if (task.status === "submitted") setStatus(task, "processing");
        }),
        later(toDone, () => {
          if (task.status === "submitted" || task.status === "processing") {
            if (task.status === "submitted") setStatus(task, "processing");
            if (outcome.status === "failed") setStatus(task, "failed", outcome.message);
            else setStatus(task, "succeed");
          }
        }),
      ]);
    }
    return task;
  }

  async function checkImage(value: string, field: string): Promise<void> {
    const bad = (message: string) => new Reject(400, 1201, message);
    if (/^https?:\/\//i.test(value)) {
      if (!opts.fetchImageUrls) return;
      let bytes: Buffer;
      try {
        const res = await fetch(value, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        bytes = Buffer.from(await res.arrayBuffer());
      } catch (err) {
        throw bad(`Failed to download ${field} from url: ${(err as Error).message}`);
      }
      if (!isJpegOrPng(bytes)) throw bad(`${field} format is not supported (jpg/jpeg/png only)`);
      if (bytes.length > MAX_IMAGE_BYTES) throw bad(`${field} is larger than 10MB`);
      return;
    }
    if (value.startsWith("data:")) throw bad(`${field} is invalid: base64 must not carry a data: prefix`);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) throw bad(`${field} is not valid base64`);
    const bytes = Buffer.from(value, "base64");
    if (!isJpegOrPng(bytes)) throw bad(`${field} format is not supported (jpg/jpeg/png only)`);
    if (bytes.length > MAX_IMAGE_BYTES) throw bad(`${field} is larger than 10MB`);
  }

  async function serveVideo(p: string, res: ServerResponse, record: FakeKlingRequest): Promise<void> {
    const id = /^\/videos\/(\d+)\.mp4$/.exec(p)?.[1];
    const task = id ? tasks.get(id) : undefined;
    const mode = task?.outcome.video ?? "ok";
    if (task?.status !== "succeed" || mode === "404") {
      record.status = 404;
      res.writeHead(404, { "Content-Type": "text/plain" });
      res.end("Not Found");
      return;
    }
    if (mode === "html") {
      record.status = 200;
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end("<!doctype html><html><body><h1>Access denied (anti-leech)</h1></body></html>");
      return;
    }
    const file = await videoFor(task);
    const bytes = await readFile(file);
    record.status = 200;
    res.writeHead(200, { "Content-Type": "video/mp4", "Content-Length": String(bytes.length) });
    res.end(bytes);
  }

  function videoFor(task: FakeKlingTask): Promise<string> {
    if (opts.videoPath) return Promise.resolve(opts.videoPath);
    const seconds = task.body.duration === "10" ? 10 : 5;
    const audio = task.body.sound === "on";
    const aspect = task.subpath === "text2video" ? String(task.body.aspect_ratio ?? "16:9") : "1:1";
    const size = VIDEO_SIZES[aspect] ?? (VIDEO_SIZES["16:9"] as { width: number; height: number });
    const cacheKey = `${seconds}-${audio}-${aspect}`;
    let render = renders.get(cacheKey);
    if (!render) {
      render = (async () => {
        workDir ??= await mkdtemp(path.join(tmpdir(), "fake-kling-"));
        return makeVideo(workDir, { format: "mp4", ...size, seconds, fps: 4, audio });
      })();
      renders.set(cacheKey, render);
      render.catch(() => renders.delete(cacheKey));
    }
    return render;
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    accessKey,
    secretKey,
    requests,
    tasks,
    callbacks,
    script(...newRules) {
      for (const rule of newRules) rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clearScript() {
      rules = [];
    },
    pendingRules: () => rules.length,
    advance(taskId, status, message) {
      const task = tasks.get(taskId);
      if (!task) throw new Error(`fake-kling: no task ${taskId}`);
      setStatus(task, status, message);
    },
    running,
    taskByExternalId: (id) => byExternalId.get(id),
    calls: (endpoint) => requests.filter((r) => (endpoint ? r.endpoint === endpoint : r.endpoint !== "video")),
    async callbacksSettled() {
      await Promise.all([...callbackChains.values()]);
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const res of hanging) res.destroy();
      await Promise.all([...callbackChains.values()]);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      if (workDir) await rm(workDir, { recursive: true, force: true });
    },
  };
}

function directives(prompt: string): FakeKlingOutcome {
  const out: FakeKlingOutcome = {};
  for (const m of prompt.matchAll(/\[kling:([a-z]+)=([^\]]*)\]/gi)) {
    const name = (m[1] ?? "").toLowerCase();
    const value = (m[2] ?? "").trim();
    if (name === "fail") Object.assign(out, { status: "failed", message: value || "Task failed" });
    else if (name === "video" && (value === "404" || value === "html" || value === "ok")) out.video = value;
    else if (name === "after" && /^\d+$/.test(value)) out.finishAfterMs = Number(value);
  }
  return out;
}

function isJpegOrPng(bytes: Buffer): boolean {
  const png =
    bytes.length > 8 && bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const jpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  return png || jpeg;
}

function range(from: number, to: number): string[] {
  return Array.from({ length: to - from + 1 }, (_, i) => String(from + i));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
  res.end(JSON.stringify({ request_id: randomUUID(), ...(payload as object) }));
}
