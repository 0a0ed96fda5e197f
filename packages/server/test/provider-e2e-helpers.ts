/**
 * Shared helpers for the end-to-end provider tests (providers-*.test.ts): a real server pointed
 * at the fake upstreams, tasks created and watched through the public API only, and the
 * credit checks every case repeats (balance, one refund row per failed task, ledger_sum).
 */
import { createHash } from "node:crypto";
import { expect } from "vitest";
import type { TasksTable } from "../src/store/schema.js";
import type { FakeFal } from "./fakes/fake-fal.js";
import type { FakeKling, FakeKlingRequest } from "./fakes/fake-kling.js";
import { uploadFile } from "./files-helpers.js";
import type { TestServer } from "./harness.js";

export const PRICE = 55;

/** Settings every provider test server shares: no rate limits, short poll cadence, quiet logs. */
export const E2E_ENV: Record<string, string> = {
  RATE_LIMIT_CREATE_PER_MIN: "0",
  RATE_LIMIT_READ_PER_MIN: "0",
  RATE_LIMIT_UPLOAD_PER_MIN: "0",
  PROVIDER_ALLOW_INSECURE_URLS: "true",
  POLL_FIRST_DELAY_MS: "50",
  POLL_MAX_INTERVAL_MS: "150",
  PROVIDER_REQUEST_TIMEOUT_SECONDS: "1",
};

export function klingEnv(fake: FakeKling): Record<string, string> {
  return { KLING_ACCESS_KEY: fake.accessKey, KLING_SECRET_KEY: fake.secretKey, KLING_BASE_URL: fake.url };
}

export function falEnv(fal: FakeFal): Record<string, string> {
  return { FAL_KEY: fal.key, FAL_QUEUE_URL: fal.url };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export async function fetchBytes(url: string): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const res = await fetch(url);
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), type: res.headers.get("content-type") };
}

type Requester = Pick<TestServer, "request">;

/** POST /api/v1/generations; expects 202 and the 55-credit reservation. */
export async function createGeneration(
  t: Requester,
  key: string,
  prompt: string,
  params: Record<string, unknown> = {},
): Promise<string> {
  const res = await t.request("/api/v1/generations", { key, json: { model: "kling-2-6", prompt, params } });
  expect(res.status, res.text).toBe(202);
  expect(res.body).toMatchObject({ status: "queued", reserved_credits: PRICE, final_credits: 0 });
  return res.body.id as string;
}

export interface Watched {
  /** Distinct statuses in the order seen. */
  history: string[];
  // biome-ignore lint/suspicious/noExplicitAny: task JSON
  final: any;
  /** The raw JSON text of the final GET. */
  text: string;
}

/** Polls GET /api/v1/generations/{id} until terminal, recording the statuses on the way. */
export async function watchTask(t: Requester, key: string, id: string, timeoutMs = 20_000): Promise<Watched> {
  const history: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.request(`/api/v1/generations/${id}`, { key });
    if (res.status !== 200) throw new Error(`GET ${id}: ${res.status} ${res.text}`);
    const status: string = res.body.status;
    if (history.at(-1) !== status) history.push(status);
    if (status === "succeeded" || status === "failed") return { history, final: res.body, text: res.text };
    if (Date.now() > deadline) throw new Error(`task ${id} still ${status} after ${timeoutMs} ms`);
    await sleep(30);
  }
}

/** Waits until `check` holds (polling), or throws with `what`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export async function dbTask(t: TestServer, id: string): Promise<TasksTable> {
  return t.server.store.db.selectFrom("tasks").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
}

export async function ledgerRows(t: TestServer, taskId: string) {
  return t.server.store.db.selectFrom("ledger_entries").selectAll().where("task_id", "=", taskId).execute();
}

/** GET /admin/v1/accounts/{id}: credits must equal the ledger sum. */
export async function expectLedgerBalanced(t: Pick<TestServer, "admin">, accountId: string): Promise<number> {
  const res = await t.admin(`/admin/v1/accounts/${accountId}`);
  expect(res.status, res.text).toBe(200);
  expect(res.body.credits).toBe(res.body.ledger.ledger_sum);
  return res.body.credits as number;
}

async function balance(t: Requester, key: string): Promise<number> {
  const res = await t.request("/api/v1/credits", { key });
  expect(res.status, res.text).toBe(200);
  return res.body.current_credits as number;
}

/** A failed task: reason, fixed public message, and its 55 credits refunded exactly once. */
export async function expectFailedAndRefunded(
  t: TestServer,
  acct: { key: string; accountId: string },
  watched: Watched,
  reason: string,
): Promise<void> {
  const task = watched.final;
  expect(task, watched.text).toMatchObject({
    status: "failed",
    reserved_credits: PRICE,
    final_credits: 0,
    result: null,
    error: { code: "generation_failed", reason },
  });
  const rows = await ledgerRows(t, task.id);
  expect(
    rows.filter((r) => r.type === "refund"),
    "refund rows",
  ).toHaveLength(1);
  expect(rows.filter((r) => r.type === "refund")[0]?.amount).toBe(PRICE);
  expect(
    rows.filter((r) => r.type === "reserve"),
    "reserve rows",
  ).toHaveLength(1);
  const credits = await expectLedgerBalanced(t, acct.accountId);
  expect(await balance(t, acct.key)).toBe(credits);
}

/** A succeeded task: charged (no refund row), with a result. */
export async function expectSucceededAndCharged(
  t: TestServer,
  acct: { key: string; accountId: string },
  watched: Watched,
): Promise<void> {
  const task = watched.final;
  expect(task, watched.text).toMatchObject({
    status: "succeeded",
    reserved_credits: PRICE,
    final_credits: PRICE,
    error: null,
  });
  expect(task.result?.media?.length, watched.text).toBeGreaterThanOrEqual(1);
  const rows = await ledgerRows(t, task.id);
  expect(
    rows.filter((r) => r.type === "refund"),
    "refund rows",
  ).toHaveLength(0);
  const credits = await expectLedgerBalanced(t, acct.accountId);
  expect(await balance(t, acct.key)).toBe(credits);
}

/** Downloads the result through our signed URL; its bytes must be what the task describes. */
export async function downloadResult(task: {
  result: { primary_url: string; media: { sha256: string; size_bytes: number }[] };
}): Promise<Buffer> {
  const got = await fetchBytes(task.result.primary_url);
  expect(got.status).toBe(200);
  expect(got.type).toBe("video/mp4");
  expect(sha256(got.bytes)).toBe(task.result.media[0]?.sha256);
  expect(got.bytes.length).toBe(task.result.media[0]?.size_bytes);
  return got.bytes;
}

/** Create calls the fake Kling received for one of our tasks (external_task_id = task id). */
export function klingCreates(fake: FakeKling, taskId: string): FakeKlingRequest[] {
  return fake.calls("create").filter((r) => r.body?.external_task_id === taskId);
}

/** Tasks the fake Kling actually created for one of our tasks. */
export function klingTasksFor(fake: FakeKling, taskId: string) {
  return [...fake.tasks.values()].filter((k) => k.externalTaskId === taskId);
}

/** Every request the fake Kling received that names our task or its Kling id. */
export function klingTrafficFor(fake: FakeKling, taskId: string): FakeKlingRequest[] {
  const ids = new Set([taskId, ...klingTasksFor(fake, taskId).map((k) => k.taskId)]);
  return fake.requests.filter(
    (r) => r.body?.external_task_id === taskId || ids.has(decodeURIComponent(r.path.split("/").pop() ?? "")),
  );
}

/** fal submits whose prompt is exactly `prompt` (our tests use unique prompts). */
export function falSubmitsFor(fal: FakeFal, prompt: string) {
  return fal.requestsTo("submit").filter((r) => (r.body as { prompt?: string } | undefined)?.prompt === prompt);
}

export function falJobsFor(fal: FakeFal, prompt: string) {
  return [...fal.jobs.values()].filter((j) => j.received.prompt === prompt);
}

/** Uploads a PNG for kling-2-6 through the Files API; returns the file object. */
export async function uploadReference(
  t: TestServer,
  key: string,
  path: string,
  // biome-ignore lint/suspicious/noExplicitAny: file JSON
): Promise<any> {
  const res = await uploadFile(t, key, path, { kind: "image", model: "kling-2-6" });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The referenceMediaItems entry for an uploaded file. */
export function referenceItem(file: { url: string; mime_type: string }) {
  return [{ url: file.url, kind: "image", mimeType: file.mime_type }];
}

/** Unique prompt text (fal has no external id: tests find their jobs by prompt). */
let counter = 0;
export function uniquePrompt(text: string): string {
  counter++;
  return `${text} #${counter}-${Math.random().toString(36).slice(2, 8)}`;
}
