/**
 * A fake fal.ai queue for tests: an HTTP server on 127.0.0.1 (ephemeral port) that implements the
 * documented queue protocol for Kling 2.6 (docs/kling-upstreams.md §2) and a programmable fault
 * script. Every request is recorded (method, path, query, headers, parsed body).
 *
 *   POST /fal-ai/kling-video/v2.6/pro/{text,image}-to-video     submit -> {request_id, gateway_request_id,
 *                                                                status_url, response_url, cancel_url}
 *   GET  /fal-ai/kling-video/requests/{id}/status               202 IN_QUEUE / 202 IN_PROGRESS / 200 COMPLETED
 *   GET  /fal-ai/kling-video/requests/{id}                      raw model output {video:{…}} or a model error
 *   PUT  /fal-ai/kling-video/requests/{id}/cancel               202 CANCELLATION_REQUESTED (removed from the queue, or
 *                                                                only signalled while running) / 400 ALREADY_COMPLETED / 404
 *   GET  /files/{name}                                          the media the results point at (no auth, like fal.media)
 *
 * Status/result/cancel exist ONLY on the owner/app path (the full model path answers 404, as on
 * fal). The URLs returned by submit and status point at `returnedUrlBase` (default
 * https://attacker.invalid), a different host, so a test can prove a client never uses them.
 *
 * Every queue route requires `Authorization: Key <key>` (401 otherwise). Faults are consumed in
 * order, one per request to that endpoint, after the auth check.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { makeVideo } from "../fixtures/media.js";

export const FAKE_FAL_APP = "fal-ai/kling-video";
export const FAKE_FAL_MODELS = {
  "text-to-video": "fal-ai/kling-video/v2.6/pro/text-to-video",
  "image-to-video": "fal-ai/kling-video/v2.6/pro/image-to-video",
} as const;
export type FakeFalMode = keyof typeof FAKE_FAL_MODELS;

export type FakeFalEndpoint = "submit" | "status" | "result" | "cancel" | "media";

/** A scripted answer that replaces the normal one for one request. */
export interface FakeFalFault {
  /** HTTP status (default 500). */
  status?: number;
  /** An object/array is sent as JSON; a string is sent verbatim (e.g. malformed JSON, HTML). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Wait this long before answering (a slow upstream). */
  delayMs?: number;
  /** Never answer; the socket stays open until the client gives up or the fake closes. */
  hang?: boolean;
  /** Drop the connection without any answer (after delayMs). */
  destroy?: boolean;
  /** After delayMs, answer normally instead (slow but correct). Other fields are ignored. */
  passthrough?: boolean;
  /** submit only: the job IS created although the client gets the fault (fal queued it, the answer was lost). */
  accept?: boolean;
}

/** What a job ends with once COMPLETED. */
export type FakeFalOutcome =
  /** The raw model output; `url` defaults to the fake's own MP4 (`/files/video.mp4`). */
  | { type: "video"; url?: string; contentType?: string | null; fileName?: string; fileSize?: number }
  /** A model error on the result endpoint (e.g. 422 content_policy_violation). */
  | { type: "model_error"; status?: number; detail: FakeFalModelError[]; headers?: Record<string, string> }
  /** Any result answer (status, body, headers), e.g. an infra error stored as the final result. */
  | { type: "raw"; status: number; body: unknown; headers?: Record<string, string> }
  /** The status endpoint reports this terminal status instead of COMPLETED (FAILED / CANCELED). */
  | { type: "status"; status: string; error?: string; errorType?: string };

export interface FakeFalModelError {
  loc: (string | number)[];
  msg: string;
  type: string;
  url?: string;
  input?: unknown;
  ctx?: Record<string, unknown>;
  categories?: string[];
}

/** How one submitted job progresses. */
export interface FakeFalJobPlan {
  /** Status polls answered 202 IN_QUEUE (default 1). */
  queuedPolls?: number;
  /** Then status polls answered 202 IN_PROGRESS (default 1). */
  inProgressPolls?: number;
  /** Also not COMPLETED before this many ms after submit (default 0). */
  readyAfterMs?: number;
  /** Default: the fake's MP4. */
  outcome?: FakeFalOutcome;
  /** Extra fields on the COMPLETED status body (e.g. {error: "...", error_type: "request_timeout"}). */
  completedStatusExtra?: Record<string, unknown>;
}

export interface FakeFalScript {
  submit?: FakeFalFault[];
  status?: FakeFalFault[];
  result?: FakeFalFault[];
  cancel?: FakeFalFault[];
  /** Faults for GET /files/* (the video download). */
  media?: FakeFalFault[];
  /** Plans for the next submitted jobs, one per submit, in order. */
  jobs?: FakeFalJobPlan[];
  /** Replaces the plan used when no queued plan is left. */
  defaultJob?: FakeFalJobPlan;
  /** Extra media served under /files/{name}: e.g. {"page.mp4": {contentType: "text/html", body: "<html>"}}. */
  files?: Record<string, { status?: number; contentType?: string; body: string | Uint8Array }>;
}

export interface FakeFalRequest {
  /** 0-based arrival order. */
  index: number;
  method: string;
  /** Path without the query. */
  path: string;
  /** Raw query string without "?" ("" when none). */
  query: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  rawBody: string;
  /** Parsed JSON body, or undefined when empty/not JSON. */
  body: unknown;
  endpoint: FakeFalEndpoint | "unknown";
  /** Status answered (undefined while hanging or when dropped). */
  answeredStatus?: number;
  at: number;
}

export interface FakeFalJob {
  requestId: string;
  mode: FakeFalMode;
  modelId: string;
  /** The body exactly as received. */
  received: Record<string, unknown>;
  /** The input as fal would run it, with fal's defaults applied (generate_audio defaults to TRUE). */
  effectiveInput: Record<string, unknown>;
  plan: Required<Pick<FakeFalJobPlan, "queuedPolls" | "inProgressPolls" | "readyAfterMs">> & FakeFalJobPlan;
  submittedAt: number;
  statusPolls: number;
  resultFetches: number;
  cancelled: boolean;
  /** A cancel arrived while it was IN_PROGRESS: signalled, but it runs on (fal's models may ignore it). */
  cancelSignalled?: boolean;
  /** With `fetchImages`: what downloading start_image_url gave. */
  imageFetch?: { status: number; contentType: string | null; bytes: number } | { error: string };
}

export interface StartFakeFalOptions {
  /** The accepted FAL_KEY (default a random "fake-key-…"). */
  key?: string;
  /** Host of the status/response/cancel URLs handed out (default https://attacker.invalid). */
  returnedUrlBase?: string;
  /** The MP4 served at /files/video.mp4 (default a 1 s 64x64 clip made with ffmpeg once per process). */
  videoPath?: string;
  /** Download start_image_url at submit, like fal; a failed download makes the job end in 422 file_download_error. */
  fetchImages?: boolean;
  /** Reject input fields fal does not know (422 extra_forbidden). fal itself ignores them; default false. */
  rejectUnknownFields?: boolean;
  /** Initial script. */
  script?: FakeFalScript;
}

export interface FakeFal {
  /** Base URL to use as FAL_QUEUE_URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  key: string;
  /** Every request received, in order. */
  requests: FakeFalRequest[];
  /** Jobs by request id. */
  jobs: Map<string, FakeFalJob>;
  /** URL of the default MP4 and its bytes. */
  videoUrl: string;
  videoBytes: Buffer;
  /** Adds faults (appended to each endpoint's queue), job plans and files. */
  script(script: FakeFalScript): void;
  /** Requests to one endpoint. */
  requestsTo(endpoint: FakeFalEndpoint): FakeFalRequest[];
  close(): Promise<void>;
}

const DEFAULT_PLAN = { queuedPolls: 1, inProgressPolls: 1, readyAfterMs: 0 } as const;

const KNOWN_FIELDS: Record<FakeFalMode, ReadonlySet<string>> = {
  "text-to-video": new Set(["prompt", "duration", "aspect_ratio", "negative_prompt", "cfg_scale", "generate_audio"]),
  "image-to-video": new Set([
    "prompt",
    "start_image_url",
    "end_image_url",
    "duration",
    "negative_prompt",
    "generate_audio",
    "voice_ids",
  ]),
};

/** fal's documented defaults (§2.2). */
const FAL_DEFAULTS: Record<FakeFalMode, Record<string, unknown>> = {
  "text-to-video": {
    duration: "5",
    aspect_ratio: "16:9",
    negative_prompt: "blur, distort, and low quality",
    cfg_scale: 0.5,
    generate_audio: true,
  },
  "image-to-video": { duration: "5", negative_prompt: "blur, distort, and low quality", generate_audio: true },
};

/** A model error body item, as fal returns it. */
export function falModelError(type: string, msg: string, loc: (string | number)[] = ["body"]): FakeFalModelError {
  return { loc, msg, type, url: `https://docs.fal.ai/errors#${type}` };
}

/** `{"detail":[{"loc":["body","prompt"],"msg":"…","type":"content_policy_violation"}]}` items. */
export function contentPolicyViolation(categories?: string[]): FakeFalModelError[] {
  return [
    {
      ...falModelError(
        "content_policy_violation",
        "The content could not be processed because it contained material flagged by a content checker.",
        ["body", "prompt"],
      ),
      input: "the flagged prompt",
      ...(categories ? { categories } : {}),
    },
  ];
}

/** An infrastructure (request) error fault: `{detail, error_type}` + X-Fal-Error-Type. */
export function falRequestError(
  status: number,
  errorType: string,
  detail = errorType.replace(/_/gu, " "),
): FakeFalFault {
  return { status, body: { detail, error_type: errorType }, headers: { "x-fal-error-type": errorType } };
}

let defaultVideo: Promise<Buffer> | undefined;

/** A real 1 s 64x64 H.264 MP4, generated once per process. */
export function fakeFalVideo(): Promise<Buffer> {
  defaultVideo ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fake-fal-"));
    try {
      const file = await makeVideo(dir, { format: "mp4", width: 64, height: 64, seconds: 1, fps: 8 });
      return await readFile(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return defaultVideo;
}

export async function startFakeFal(opts: StartFakeFalOptions = {}): Promise<FakeFal> {
  const key = opts.key ?? `fake-key-${randomUUID()}`;
  const returnedBase = (opts.returnedUrlBase ?? "https://attacker.invalid").replace(/\/+$/u, "");
  const videoBytes = opts.videoPath ? await readFile(opts.videoPath) : await fakeFalVideo();

  const requests: FakeFalRequest[] = [];
  const jobs = new Map<string, FakeFalJob>();
  const faults: Record<FakeFalEndpoint, FakeFalFault[]> = { submit: [], status: [], result: [], cancel: [], media: [] };
  const plans: FakeFalJobPlan[] = [];
  let defaultPlan: FakeFalJobPlan = {};
  const files = new Map<string, { status: number; contentType: string; body: Buffer }>();
  files.set("video.mp4", { status: 200, contentType: "video/mp4", body: videoBytes });
  const sockets = new Set<Socket>();
  let base = "";

  const applyScript = (script: FakeFalScript) => {
    for (const endpoint of ["submit", "status", "result", "cancel", "media"] as const) {
      faults[endpoint].push(...(script[endpoint] ?? []));
    }
    plans.push(...(script.jobs ?? []));
    if (script.defaultJob) defaultPlan = script.defaultJob;
    for (const [name, file] of Object.entries(script.files ?? {})) {
      files.set(name, {
        status: file.status ?? 200,
        contentType: file.contentType ?? "application/octet-stream",
        body: typeof file.body === "string" ? Buffer.from(file.body, "utf8") : Buffer.from(file.body),
      });
    }
  };
  if (opts.script) applyScript(opts.script);

  const send = (
    res: ServerResponse,
    record: FakeFalRequest,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const isRaw = typeof body === "string" || Buffer.isBuffer(body);
    const payload = isRaw ? Buffer.from(body as string | Buffer) : Buffer.from(JSON.stringify(body ?? null));
    record.answeredStatus = status;
    res.writeHead(status, {
      ...(isRaw ? {} : { "content-type": "application/json" }),
      "content-length": String(payload.length),
      ...headers,
    });
    res.end(payload);
  };

  /**
   * Takes the endpoint's next fault, waits its delay and, unless it is a passthrough or a submit
   * that must still create the job (`accept`), answers with it.
   */
  const applyFault = async (
    endpoint: FakeFalEndpoint,
    res: ServerResponse,
    record: FakeFalRequest,
  ): Promise<{ handled: boolean; deferred?: FakeFalFault }> => {
    const fault = faults[endpoint].shift();
    if (!fault) return { handled: false };
    if (fault.delayMs) await delay(fault.delayMs);
    if (fault.passthrough) return { handled: false };
    if (endpoint === "submit" && fault.accept) return { handled: false, deferred: fault };
    performFault(res, record, fault);
    return { handled: true };
  };

  const performFault = (res: ServerResponse, record: FakeFalRequest, fault: FakeFalFault) => {
    if (fault.hang) return;
    if (fault.destroy) {
      res.socket?.destroy();
      return;
    }
    send(res, record, fault.status ?? 500, fault.body ?? { detail: "Internal Server Error" }, fault.headers);
  };

  const jobUrls = (id: string) => ({
    status_url: `${returnedBase}/${FAKE_FAL_APP}/requests/${id}/status`,
    response_url: `${returnedBase}/${FAKE_FAL_APP}/requests/${id}`,
    cancel_url: `${returnedBase}/${FAKE_FAL_APP}/requests/${id}/cancel`,
  });

  const currentStatus = (job: FakeFalJob): "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | string => {
    if (job.cancelled) return "CANCELED";
    const n = job.statusPolls; // polls answered before this one
    if (n < job.plan.queuedPolls) return "IN_QUEUE";
    if (n < job.plan.queuedPolls + job.plan.inProgressPolls) return "IN_PROGRESS";
    if (Date.now() - job.submittedAt < job.plan.readyAfterMs) return "IN_PROGRESS";
    return job.plan.outcome?.type === "status" ? job.plan.outcome.status : "COMPLETED";
  };

  const isCompleted = (job: FakeFalJob) =>
    !job.cancelled &&
    job.statusPolls >= job.plan.queuedPolls + job.plan.inProgressPolls &&
    Date.now() - job.submittedAt >= job.plan.readyAfterMs;

  const handleSubmit = async (mode: FakeFalMode, res: ServerResponse, record: FakeFalRequest, accepted: boolean) => {
    const body = record.body;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      if (!accepted)
        send(res, record, 422, {
          detail: [falModelError("model_attributes_type", "Input should be an object", ["body"])],
        });
      return;
    }
    const input = body as Record<string, unknown>;
    const problems = validateInput(mode, input, opts.rejectUnknownFields ?? false);
    if (problems.length > 0 && !accepted) {
      send(res, record, 422, { detail: problems });
      return;
    }
    const planSource = plans.shift() ?? defaultPlan;
    const requestId = randomUUID();
    const job: FakeFalJob = {
      requestId,
      mode,
      modelId: FAKE_FAL_MODELS[mode],
      received: input,
      effectiveInput: { ...FAL_DEFAULTS[mode], ...input },
      plan: { ...DEFAULT_PLAN, ...planSource },
      submittedAt: Date.now(),
      statusPolls: 0,
      resultFetches: 0,
      cancelled: false,
    };
    jobs.set(requestId, job);
    if (opts.fetchImages && mode === "image-to-video" && typeof input.start_image_url === "string") {
      job.imageFetch = await fetchImage(input.start_image_url);
      if ("error" in job.imageFetch || job.imageFetch.status !== 200) {
        job.plan.outcome = {
          type: "model_error",
          detail: [falModelError("file_download_error", "File download error", ["body", "start_image_url"])],
        };
      }
    }
    if (accepted) return;
    send(res, record, 200, {
      status: "IN_QUEUE",
      request_id: requestId,
      gateway_request_id: requestId,
      queue_position: 0,
      ...jobUrls(requestId),
    });
  };

  const handleStatus = (job: FakeFalJob, res: ServerResponse, record: FakeFalRequest) => {
    const status = currentStatus(job);
    const urls = jobUrls(job.requestId);
    let answer: { code: number; body: Record<string, unknown> };
    if (status === "IN_QUEUE") {
      const position = Math.max(0, job.plan.queuedPolls - job.statusPolls - 1);
      answer = {
        code: 202,
        body: { status, request_id: job.requestId, queue_position: position, response_url: urls.response_url },
      };
    } else if (status === "IN_PROGRESS") {
      answer = { code: 202, body: { status, request_id: job.requestId, response_url: urls.response_url, logs: null } };
    } else if (status === "COMPLETED") {
      answer = {
        code: 200,
        body: {
          status,
          request_id: job.requestId,
          response_url: urls.response_url,
          logs: null,
          metrics: { inference_time: 1.5 },
          ...job.plan.completedStatusExtra,
        },
      };
    } else {
      const outcome = job.plan.outcome?.type === "status" ? job.plan.outcome : undefined;
      answer = {
        code: 200,
        body: {
          status,
          request_id: job.requestId,
          response_url: urls.response_url,
          ...(outcome?.error ? { error: outcome.error } : {}),
          ...(outcome?.errorType ? { error_type: outcome.errorType } : {}),
        },
      };
    }
    job.statusPolls++;
    send(res, record, answer.code, answer.body);
  };

  const handleResult = (job: FakeFalJob, res: ServerResponse, record: FakeFalRequest) => {
    job.resultFetches++;
    if (job.cancelled) {
      send(res, record, 400, { detail: "Request was cancelled" });
      return;
    }
    if (!isCompleted(job)) {
      send(res, record, 400, { detail: "Request is still in progress" });
      return;
    }
    const outcome = job.plan.outcome ?? { type: "video" };
    switch (outcome.type) {
      case "video": {
        const contentType = outcome.contentType === undefined ? "video/mp4" : outcome.contentType;
        send(res, record, 200, {
          video: {
            url: outcome.url ?? `${base}/files/video.mp4`,
            ...(contentType === null ? {} : { content_type: contentType }),
            file_name: outcome.fileName ?? "output.mp4",
            file_size: outcome.fileSize ?? videoBytes.length,
          },
        });
        return;
      }
      case "model_error":
        send(res, record, outcome.status ?? 422, { detail: outcome.detail }, outcome.headers);
        return;
      case "raw":
        send(res, record, outcome.status, outcome.body, outcome.headers);
        return;
      case "status":
        send(res, record, 500, {
          detail: `Request ${outcome.status.toLowerCase()}`,
          error_type: outcome.errorType ?? "internal_error",
        });
        return;
    }
  };

  /**
   * As fal documents it: a request still in the queue is removed (it never runs); a running one
   * only gets a cancellation signal, which the model may ignore, so here it runs on to its end.
   */
  const handleCancel = (job: FakeFalJob, res: ServerResponse, record: FakeFalRequest) => {
    if (isCompleted(job) || job.cancelled) {
      send(res, record, 400, { status: "ALREADY_COMPLETED" });
      return;
    }
    if (currentStatus(job) === "IN_PROGRESS") job.cancelSignalled = true;
    else job.cancelled = true;
    send(res, record, 202, { status: "CANCELLATION_REQUESTED" });
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`fake-fal error: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const rawBody = await readBody(req);
    const url = new URL(req.url ?? "/", "http://fake.invalid");
    const record: FakeFalRequest = {
      index: requests.length,
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.search.replace(/^\?/u, ""),
      headers: flattenHeaders(req),
      rawBody,
      body: parseBody(rawBody),
      endpoint: "unknown",
      at: Date.now(),
    };
    requests.push(record);
    const method = record.method;
    const p = record.path;

    // Media: public, like fal.media.
    const media = /^\/files\/([A-Za-z0-9._-]+)$/u.exec(p);
    if (media && (method === "GET" || method === "HEAD")) {
      record.endpoint = "media";
      if ((await applyFault("media", res, record)).handled) return;
      const file = files.get(media[1] as string);
      if (!file) {
        send(res, record, 404, "Not Found", { "content-type": "text/plain" });
        return;
      }
      record.answeredStatus = file.status;
      res.writeHead(file.status, { "content-type": file.contentType, "content-length": String(file.body.length) });
      res.end(method === "HEAD" ? undefined : file.body);
      return;
    }

    const submitMode = (Object.keys(FAKE_FAL_MODELS) as FakeFalMode[]).find((m) => p === `/${FAKE_FAL_MODELS[m]}`);
    const statusMatch = new RegExp(`^/${FAKE_FAL_APP}/requests/([^/]+)/status$`, "u").exec(p);
    const cancelMatch = new RegExp(`^/${FAKE_FAL_APP}/requests/([^/]+)/cancel$`, "u").exec(p);
    const resultMatch = new RegExp(`^/${FAKE_FAL_APP}/requests/([^/]+)$`, "u").exec(p);
    if (submitMode && method === "POST") record.endpoint = "submit";
    else if (statusMatch && method === "GET") record.endpoint = "status";
    else if (cancelMatch && method === "PUT") record.endpoint = "cancel";
    else if (resultMatch && method === "GET") record.endpoint = "result";

    if (record.headers.authorization !== `Key ${key}`) {
      send(res, record, 401, { detail: "Invalid authentication credentials" });
      return;
    }
    if (record.endpoint === "unknown") {
      send(res, record, 404, { detail: "Not Found" });
      return;
    }
    const endpoint = record.endpoint;
    const fault = await applyFault(endpoint, res, record);
    if (fault.handled) return;

    if (endpoint === "submit" && submitMode) {
      await handleSubmit(submitMode, res, record, fault.deferred !== undefined);
      if (fault.deferred) performFault(res, record, fault.deferred);
      return;
    }
    const id = (statusMatch ?? cancelMatch ?? resultMatch)?.[1] ?? "";
    const job = jobs.get(id);
    if (!job) {
      send(res, record, 404, endpoint === "cancel" ? { status: "NOT_FOUND" } : { detail: "Request not found" });
      return;
    }
    if (endpoint === "status") handleStatus(job, res, record);
    else if (endpoint === "result") handleResult(job, res, record);
    else handleCancel(job, res, record);
  };

  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    key,
    requests,
    jobs,
    videoUrl: `${base}/files/video.mp4`,
    videoBytes,
    script: applyScript,
    requestsTo: (endpoint) => requests.filter((r) => r.endpoint === endpoint),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function validateInput(mode: FakeFalMode, input: Record<string, unknown>, rejectUnknown: boolean): FakeFalModelError[] {
  const problems: FakeFalModelError[] = [];
  const missing = (field: string) =>
    problems.push({
      loc: ["body", field],
      msg: "Field required",
      type: "missing",
      url: "https://docs.fal.ai/errors#missing",
    });
  const oneOf = (field: string, expected: readonly unknown[]) => {
    if (input[field] !== undefined && !expected.includes(input[field])) {
      problems.push({
        loc: ["body", field],
        msg: `Input should be ${expected.map((e) => JSON.stringify(e)).join(" or ")}`,
        type: "one_of",
        url: "https://docs.fal.ai/errors#one_of",
        ctx: { expected },
        input: input[field],
      });
    }
  };
  if (typeof input.prompt !== "string") missing("prompt");
  oneOf("duration", ["5", "10"]);
  if (input.generate_audio !== undefined && typeof input.generate_audio !== "boolean") {
    problems.push({
      loc: ["body", "generate_audio"],
      msg: "Input should be a valid boolean",
      type: "bool_type",
      input: input.generate_audio,
    });
  }
  if (mode === "text-to-video") oneOf("aspect_ratio", ["16:9", "9:16", "1:1"]);
  if (mode === "image-to-video" && typeof input.start_image_url !== "string") missing("start_image_url");
  if (rejectUnknown) {
    for (const field of Object.keys(input)) {
      if (!KNOWN_FIELDS[mode].has(field)) {
        problems.push({
          loc: ["body", field],
          msg: "Extra inputs are not permitted",
          type: "extra_forbidden",
          input: input[field],
        });
      }
    }
  }
  return problems;
}

async function fetchImage(
  url: string,
): Promise<{ status: number; contentType: string | null; bytes: number } | { error: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const bytes = (await res.arrayBuffer()).byteLength;
    return { status: res.status, contentType: res.headers.get("content-type"), bytes };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function parseBody(raw: string): unknown {
  if (!raw) return undefined;
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
