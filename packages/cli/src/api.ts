/**
 * The API commands (generate, status, wait, credits, models, files, webhooks, login/logout):
 * thin wrappers around @framegate/sdk that add local flag checks, live progress, downloads and
 * --json output.
 */
import { randomUUID } from "node:crypto";
import { rm } from "node:fs/promises";
import { basename } from "node:path";
import { createInterface } from "node:readline";
import { uploadLimit } from "@framegate/contract";
import {
  APIConnectionError,
  AuthenticationError,
  Framegate,
  type Model,
  type PollInterval,
  type Task,
  WaitTimeoutError,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from "@framegate/sdk";
import {
  type ConfigFile,
  configPath,
  maskKey,
  normalizeBaseUrl,
  type ResolvedConfig,
  readConfigFile,
  resolveConfig,
  writeConfigFile,
} from "./client-config.js";
import { downloadResult, resolveOutPath } from "./download.js";
import { OutageNotice } from "./outage.js";
import { CliError, EXIT_INTERRUPTED, formatBytes, isAbort, Output, usageError } from "./output.js";
import {
  buildParams,
  checkLocalFile,
  checkReferenceImage,
  type GenerateFlags,
  parseEvents,
  resolveKind,
  resolveModel,
} from "./params.js";
import { TaskStatusView } from "./progress.js";

export interface ApiOptions {
  baseUrl?: string;
  apiKey?: string;
  json?: boolean;
}

export interface ApiContext {
  client: Framegate;
  config: ResolvedConfig;
  out: Output;
  /** Aborted by Ctrl-C. */
  signal: AbortSignal;
  /** When the command started (elapsed times count from here). */
  started: number;
}

/** FRAMEGATE_POLL_INTERVAL_MS: a fixed polling interval instead of the SDK's 2.5 s → 10 s cadence. */
function pollIntervalFromEnv(): PollInterval | undefined {
  const raw = process.env.FRAMEGATE_POLL_INTERVAL_MS?.trim();
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 10) {
    throw usageError(`FRAMEGATE_POLL_INTERVAL_MS must be a whole number of milliseconds ≥ 10 (got "${raw}")`);
  }
  const ms = Number(raw);
  return { first: ms, min: ms, max: ms };
}

/**
 * Resolves the configuration, builds the client, runs the command, prints errors and sets the
 * exit code. Ctrl-C aborts `signal`; a second Ctrl-C exits at once.
 */
export async function runApi<O extends ApiOptions>(
  opts: O,
  handler: (ctx: ApiContext, opts: O) => Promise<void>,
  {
    needsKey = true,
    check,
  }: {
    needsKey?: boolean;
    /** Local checks of the flags, run first: a bad flag is reported before anything else. */
    check?: () => unknown;
  } = {},
): Promise<void> {
  const out = new Output(opts);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(EXIT_INTERRUPTED);
    const error = new Error("interrupted");
    error.name = "CliInterrupt";
    controller.abort(error);
  };
  process.on("SIGINT", onSigint);
  let baseUrl: string | undefined;
  try {
    await check?.();
    const config = await resolveConfig(opts);
    baseUrl = config.baseUrl;
    if (needsKey && !config.apiKey) {
      throw new CliError("api_key_missing", "no API key is configured", {
        hint: "run `framegate login --api-key <key>`, set FRAMEGATE_API_KEY, or pass --api-key.",
      });
    }
    const pollInterval = pollIntervalFromEnv();
    const client = new Framegate({
      baseUrl: config.baseUrl,
      // An empty key keeps the SDK from falling back to other environment variables.
      apiKey: config.apiKey ?? "",
      ...(pollInterval ? { pollInterval } : {}),
    });
    await handler({ client, config, out, signal: controller.signal, started: Date.now() }, opts);
  } catch (error) {
    out.fail(error, baseUrl);
  } finally {
    process.off("SIGINT", onSigint);
  }
}

const isTerminal = (task: Task) => task.status === "succeeded" || task.status === "failed";

function paramsText(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

function mediaText(task: Task): string {
  const media = task.result?.media[0];
  if (!media) return "";
  const seconds = Math.round(media.duration_seconds * 10) / 10;
  return `${media.width}x${media.height}, ${seconds} s, ${media.has_audio ? "with sound" : "no sound"}`;
}

/** Credits a failed task returned to the balance (the contract: reserved, then all refunded on failure). */
export function refundedCredits(task: Task): number {
  return task.status === "failed" ? Math.max(0, task.reserved_credits - task.final_credits) : 0;
}

function creditsText(task: Task): string {
  if (task.status === "failed") return `${task.final_credits} (${refundedCredits(task)} reserved, refunded)`;
  if (task.status === "succeeded") return String(task.final_credits);
  return `${task.reserved_credits} reserved`;
}

/** A task as people read it. */
export function describeTask(task: Task): string {
  const lines = [`${task.id}  ${task.status}`, `  model:     ${task.model}`];
  if (Object.keys(task.params ?? {}).length) lines.push(`  params:    ${paramsText(task.params)}`);
  if (task.references?.length) {
    for (const ref of task.references) {
      lines.push(`  reference: ${ref.file_id} (${ref.kind}${ref.width ? `, ${ref.width}x${ref.height}` : ""})`);
    }
  }
  lines.push(`  credits:   ${creditsText(task)}`);
  lines.push(`  created:   ${task.created_at}`);
  if (task.completed_at) lines.push(`  completed: ${task.completed_at}`);
  if (task.result) {
    const media = task.result.media[0];
    lines.push(`  video:     ${mediaText(task)}${media ? `, ${formatBytes(media.size_bytes)}` : ""}`);
    lines.push(`  url:       ${task.result.primary_url}`);
    lines.push(`  expires:   ${task.result.expires_at}`);
  }
  if (task.error) lines.push(`  error:     ${task.error.code} (${task.error.reason}): ${task.error.message}`);
  return lines.join("\n");
}

/**
 * Waits for a task with a live status, then (when `download`) saves its video. A failed task is
 * printed (with --json) and thrown as `generation_failed (<reason>)`.
 */
async function finish(
  ctx: ApiContext,
  start: Task | { id: string; unreadable: unknown },
  opts: { out?: string; download: boolean; timeoutSeconds?: number },
): Promise<void> {
  const { client, out, signal } = ctx;
  const id = start.id;
  const view = new TaskStatusView(out, ctx.started);
  const outage = new OutageNotice((line) => view.note(line));
  let final: Task | undefined = "unreadable" in start ? undefined : start;
  try {
    // The first read failed too (`wait` on a server that is down): say so, and wait all the same.
    if ("unreadable" in start) outage.failed(start.unreadable);
    else view.update(start);
    if (!final || !isTerminal(final)) {
      final = await client.generations.waitFor(id, {
        signal,
        onUpdate: (t) => {
          outage.succeeded();
          view.update(t);
        },
        onRetry: (error) => outage.failed(error),
        ...(opts.timeoutSeconds ? { timeout: opts.timeoutSeconds * 1000 } : {}),
      });
    }
  } catch (error) {
    const hint = `it keeps running on the server: \`framegate wait ${id}\``;
    if (isAbort(error)) {
      throw new CliError("interrupted", `stopped waiting for ${id}`, {
        exitCode: EXIT_INTERRUPTED,
        taskId: id,
        hint,
      });
    }
    if (error instanceof WaitTimeoutError) {
      const why = outage.unreachable ? " (the server was unreachable)" : "";
      throw new CliError("wait_timeout", `${id} did not finish in time${why}`, { taskId: id, hint });
    }
    throw error;
  } finally {
    view.stop();
  }
  if (final.status === "failed") {
    if (out.json) out.result(final, "");
    else out.line(`${final.id} failed: its ${refundedCredits(final)} credits were refunded to your balance`);
    throw new CliError(final.error?.code ?? "generation_failed", final.error?.message ?? "The generation failed.", {
      taskId: final.id,
      ...(final.error?.reason ? { reason: final.error.reason } : {}),
    });
  }
  if (!opts.download) {
    out.result(final, describeTask(final));
    return;
  }
  const dest = await resolveOutPath(opts.out, final.id);
  let saved: { path: string; bytes: number };
  try {
    saved = await downloadResult(final, dest, { out, baseUrl: ctx.config.baseUrl, signal });
  } catch (error) {
    if (isAbort(error)) {
      throw new CliError("interrupted", `download of ${final.id} stopped`, {
        exitCode: EXIT_INTERRUPTED,
        taskId: final.id,
        hint: `download it later with \`framegate wait ${final.id} --out ${dest}\``,
      });
    }
    throw error;
  }
  const media = mediaText(final);
  out.result(
    { ...final, file: saved.path },
    `saved ${saved.path} (${formatBytes(saved.bytes)}${media ? `, ${media}` : ""})`,
  );
}

export interface GenerateOptions extends ApiOptions, GenerateFlags {
  out?: string;
  wait: boolean;
  idempotencyKey?: string;
  timeout?: string;
}

export function parseTimeout(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) <= 0) {
    throw usageError(`--timeout must be a whole number of seconds > 0 (got "${raw}")`);
  }
  return Number(raw);
}

/** Local checks of `generate`: everything that can be refused before a request. */
export async function checkGenerate(prompt: string, opts: GenerateOptions) {
  const built = buildParams(prompt, opts);
  if (opts.image !== undefined) await checkReferenceImage(opts.image, built.model);
  if (!opts.wait && opts.out !== undefined) throw usageError("--out needs the result: drop --no-wait");
  const timeoutSeconds = parseTimeout(opts.timeout);
  const key = opts.idempotencyKey;
  if (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw usageError("--idempotency-key must be 1-255 printable ASCII characters without spaces");
  }
  return { ...built, timeoutSeconds };
}

export async function generate(ctx: ApiContext, prompt: string, opts: GenerateOptions): Promise<void> {
  const { client, out, signal } = ctx;
  const { model, params, timeoutSeconds } = await checkGenerate(prompt, opts);
  const body: { model: string; prompt: string; params: Record<string, unknown> } = { model: model.id, prompt, params };
  if (opts.image !== undefined) {
    out.line(`uploading ${basename(opts.image)}`);
    const file = await client.files.upload(opts.image, { kind: "image", model: model.id }, { signal });
    out.line(
      `uploaded ${basename(opts.image)} as ${file.id} (${file.width}x${file.height}, ${formatBytes(file.size_bytes)})`,
    );
    body.params = { ...params, referenceMediaItems: [{ url: file.url, kind: "image", mimeType: file.mime_type }] };
  }
  // One key per invocation: the SDK sends it on every retry, so a retried create never makes a second task.
  const idempotencyKey = opts.idempotencyKey ?? randomUUID();
  const task = await client.generations.create(body, { idempotencyKey, signal });
  out.line(`created ${task.id} (${paramsText(task.params)}; ${task.reserved_credits} credits reserved)`);
  if (!opts.wait) {
    out.result(task, `${task.id} ${task.status}\n  follow it with: framegate wait ${task.id} --out ${task.id}.mp4`);
    return;
  }
  await finish(ctx, task, {
    download: true,
    ...(opts.out !== undefined ? { out: opts.out } : {}),
    ...(timeoutSeconds ? { timeoutSeconds } : {}),
  });
}

export async function status(ctx: ApiContext, id: string): Promise<void> {
  const task = await ctx.client.generations.retrieve(id, { signal: ctx.signal });
  ctx.out.result(task, describeTask(task));
}

export async function wait(ctx: ApiContext, id: string, opts: { out?: string; timeout?: string }): Promise<void> {
  const timeoutSeconds = parseTimeout(opts.timeout);
  let start: Task | { id: string; unreadable: unknown };
  try {
    start = await ctx.client.generations.retrieve(id, { signal: ctx.signal });
  } catch (error) {
    // A server that is down (or restarting) is waited for like one that goes down mid-wait; any
    // other error (not_found, a bad key) is the answer.
    if (!(error instanceof APIConnectionError)) throw error;
    start = { id, unreadable: error };
  }
  await finish(ctx, start, {
    download: opts.out !== undefined,
    ...(opts.out !== undefined ? { out: opts.out } : {}),
    ...(timeoutSeconds ? { timeoutSeconds } : {}),
  });
}

export async function credits(ctx: ApiContext): Promise<void> {
  const balance = await ctx.client.credits.retrieve({ signal: ctx.signal });
  ctx.out.result(balance, `${balance.current_credits} credits`);
}

function modelText(m: Model): string {
  const lines = [`${m.id}  ${m.display_name}  (${m.category}, ${m.base_credits} credits, ${m.api_status})`];
  lines.push(`  modes:  ${m.supported_modes.join(", ")}`);
  for (const p of m.params) {
    const values = p.options ? p.options.join("|") : p.type;
    lines.push(`  ${p.key}: ${values}${p.default !== null ? ` (default ${p.default})` : ""}  ${p.description}`);
  }
  for (const limit of m.reference_media?.limits ?? []) {
    const side = limit.min_side_px ? `, sides ≥ ${limit.min_side_px} px` : "";
    lines.push(`  reference ${limit.kind}: ${limit.mime_types.join(", ")}, ≤ ${formatBytes(limit.max_bytes)}${side}`);
  }
  return lines.join("\n");
}

export async function models(ctx: ApiContext): Promise<void> {
  const list = await ctx.client.models.list({ signal: ctx.signal });
  ctx.out.result(list, list.data.length ? list.data.map(modelText).join("\n\n") : "no models");
}

/** Local checks of `files upload`: the kind, the model, and the file against the upload policy. */
export async function checkUpload(path: string, opts: { kind?: string; model?: string }) {
  const kind = resolveKind(opts.kind, path);
  const model = opts.model !== undefined ? resolveModel(opts.model) : undefined;
  const limit = uploadLimit(kind, model);
  if (!limit) throw usageError(`${model?.id} does not take ${kind} files (--kind ${kind})`);
  await checkLocalFile(path, "files upload", limit.max_bytes);
  return { kind, model };
}

export async function filesUpload(
  ctx: ApiContext,
  path: string,
  opts: { kind?: string; model?: string },
): Promise<void> {
  const { kind, model } = await checkUpload(path, opts);
  const file = await ctx.client.files.upload(
    path,
    { kind, ...(model ? { model: model.id } : {}) },
    { signal: ctx.signal },
  );
  const dims = file.width ? `, ${file.width}x${file.height}` : "";
  const duration = file.duration_seconds !== null ? `, ${file.duration_seconds} s` : "";
  ctx.out.result(
    file,
    [
      `${file.id}  ${file.kind}  ${file.mime_type}  ${formatBytes(file.size_bytes)}${dims}${duration}`,
      `  url:     ${file.url}`,
      `  expires: ${file.expires_at}`,
      ...(file.duration_token ? [`  duration_token: ${file.duration_token}`] : []),
    ].join("\n"),
  );
}

export function endpointText(e: WebhookEndpoint): string {
  const name = e.name ? `  ${e.name}` : "";
  return `${e.id}  ${e.status}  ${e.url}  ${e.event_types.join(",")}${name}`;
}

/** Local checks of `webhooks create`: --url and --events. */
export function checkWebhook(opts: { url: string; events?: string }): WebhookEventType[] | undefined {
  const events = parseEvents(opts.events) as WebhookEventType[] | undefined;
  let url: URL | undefined;
  try {
    url = new URL(opts.url);
  } catch {}
  if (url?.protocol !== "https:" && url?.protocol !== "http:") {
    throw usageError(`--url must be an absolute http(s) URL (got "${opts.url}")`);
  }
  return events;
}

export async function webhooksCreate(
  ctx: ApiContext,
  opts: { url: string; name?: string; events?: string },
): Promise<void> {
  const events = checkWebhook(opts);
  const endpoint = await ctx.client.webhooks.create(
    {
      url: opts.url,
      ...(opts.name !== undefined ? { name: opts.name } : {}),
      ...(events ? { event_types: events } : {}),
    },
    { signal: ctx.signal },
  );
  ctx.out.result(
    endpoint,
    [
      `created ${endpointText(endpoint)}`,
      "",
      `  signing secret: ${endpoint.signing_secret}`,
      "",
      "This is the only time the secret is shown; store it now (verify deliveries with it).",
    ].join("\n"),
  );
}

export async function webhooksList(ctx: ApiContext): Promise<void> {
  const data: WebhookEndpoint[] = [];
  for await (const e of ctx.client.webhooks.list({ limit: 100 }, { signal: ctx.signal })) data.push(e);
  ctx.out.result({ object: "list", data }, data.length ? data.map(endpointText).join("\n") : "no webhook endpoints");
}

export async function webhooksTest(ctx: ApiContext, id: string): Promise<void> {
  const event = await ctx.client.webhooks.test(id, { signal: ctx.signal });
  ctx.out.result(
    event,
    `queued ${event.type} event ${event.id} for ${id}\n  see the attempts with: framegate webhooks deliveries ${id}`,
  );
}

export async function webhooksDelete(ctx: ApiContext, id: string): Promise<void> {
  const endpoint = await ctx.client.webhooks.delete(id, { signal: ctx.signal });
  ctx.out.result(endpoint, `deleted ${endpoint.id}`);
}

function deliveryText(d: WebhookDelivery): string {
  const answer = d.response_status !== null ? `HTTP ${d.response_status}` : (d.error ?? "no answer");
  const retry = d.next_attempt_at ? `  next attempt ${d.next_attempt_at}` : "";
  const took = d.duration_ms !== null ? ` in ${d.duration_ms} ms` : "";
  return `${d.id}  ${d.created_at}  ${d.event_type}  attempt ${d.attempt}  ${d.status}  ${answer}${took}${retry}`;
}

/** Local checks of `webhooks deliveries`: --status and --limit. */
export function checkDeliveries(opts: { status?: string; limit?: string }): {
  limit: number;
  status: "failed" | "succeeded" | undefined;
} {
  if (opts.status !== undefined && opts.status !== "failed" && opts.status !== "succeeded") {
    throw usageError(`--status must be failed or succeeded (got "${opts.status}")`);
  }
  const limit = opts.limit === undefined ? 20 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1) {
    throw usageError(`--limit must be a whole number ≥ 1 (got "${opts.limit}")`);
  }
  return { limit, status: opts.status };
}

export async function webhooksDeliveries(
  ctx: ApiContext,
  id: string,
  opts: { status?: string; limit?: string },
): Promise<void> {
  const { limit, status } = checkDeliveries(opts);
  const data: WebhookDelivery[] = [];
  const pages = ctx.client.webhooks.deliveries(
    id,
    { limit: Math.min(limit, 100), ...(status ? { status } : {}) },
    { signal: ctx.signal },
  );
  for await (const d of pages) {
    data.push(d);
    if (data.length >= limit) break;
  }
  ctx.out.result({ object: "list", data }, data.length ? data.map(deliveryText).join("\n") : "no deliveries");
}

/** Reads a key typed at a hidden prompt (TTY), or the first line of stdin (pipe). */
async function readKey(): Promise<string> {
  const input = process.stdin;
  if (input.isTTY) {
    process.stderr.write("API key: ");
    return new Promise((resolve, reject) => {
      let value = "";
      input.setRawMode(true);
      input.resume();
      input.setEncoding("utf8");
      const done = (error?: Error) => {
        input.setRawMode(false);
        input.pause();
        input.off("data", onData);
        process.stderr.write("\n");
        if (error) reject(error);
        else resolve(value.trim());
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === "\r" || ch === "\n" || ch === "\u0004") return done();
          if (ch === "\u0003") {
            const error = new Error("interrupted");
            error.name = "CliInterrupt";
            return done(error);
          }
          if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
          else value += ch;
        }
      };
      input.on("data", onData);
    });
  }
  const rl = createInterface({ input });
  for await (const line of rl) {
    rl.close();
    return line.trim();
  }
  return "";
}

/** `login`: checks the key with GET /api/v1/credits, then saves it (0600) with the base URL. */
export async function login(opts: ApiOptions): Promise<void> {
  const out = new Output(opts);
  const path = configPath();
  let baseUrl: string | undefined;
  try {
    const existing: ConfigFile = await readConfigFile(path);
    const rawBase = opts.baseUrl ?? process.env.FRAMEGATE_BASE_URL?.trim() ?? existing.baseUrl;
    baseUrl = normalizeBaseUrl(rawBase || "http://127.0.0.1:8787", opts.baseUrl ? "--base-url" : "the base URL");
    const apiKey = (opts.apiKey ?? process.env.FRAMEGATE_API_KEY ?? "").trim() || (await readKey());
    if (!apiKey) throw usageError("no API key given: pass --api-key <key> (or type it at the prompt)");
    const client = new Framegate({ baseUrl, apiKey });
    let balance: { current_credits: number };
    try {
      balance = await client.credits.retrieve();
    } catch (error) {
      if (error instanceof AuthenticationError) {
        throw new CliError(error.code, `the server refused the key ${maskKey(apiKey)}: ${error.message}`, {
          ...(error.requestId ? { requestId: error.requestId } : {}),
        });
      }
      throw error;
    }
    await writeConfigFile(path, { baseUrl, apiKey });
    out.result(
      { baseUrl, keyPrefix: maskKey(apiKey), credits: balance.current_credits, configPath: path },
      `logged in to ${baseUrl} with ${maskKey(apiKey)} (${balance.current_credits} credits)\nsaved to ${path}`,
    );
  } catch (error) {
    out.fail(error, baseUrl);
  }
}

/** `logout`: deletes the config file. */
export async function logout(opts: { json?: boolean }): Promise<void> {
  const out = new Output(opts);
  const path = configPath();
  try {
    const existing = await readConfigFile(path).catch(() => ({}) as ConfigFile);
    await rm(path, { force: true });
    out.result(
      { configPath: path, removed: Object.keys(existing).length > 0 },
      Object.keys(existing).length ? `removed ${path}` : `not logged in (${path} does not exist)`,
    );
  } catch (error) {
    out.fail(error);
  }
}
