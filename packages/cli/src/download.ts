/**
 * Downloads a finished task's video: streamed to a temporary `<out>.<random>.part` next to the
 * target and renamed into place only when complete, so an interrupted download never leaves a
 * truncated file under the final name.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Task } from "@framegate/sdk";
import { CliError, formatBytes, type Output } from "./output.js";
import { byteProgress } from "./progress.js";

/** `--out` as an absolute path: the default `<task id>.mp4` in the cwd, or inside `--out` when that is a directory. */
export async function resolveOutPath(out: string | undefined, taskId: string): Promise<string> {
  const fileName = `${taskId}.mp4`;
  if (!out) return resolve(fileName);
  const target = resolve(out);
  const info = await stat(target).catch(() => undefined);
  if (info?.isDirectory() || /[\\/]$/.test(out)) return join(target, fileName);
  return target;
}

async function errorFromDownload(response: Response): Promise<CliError> {
  const text = await response.text().catch(() => "");
  let code = `http_${response.status}`;
  let message = `download failed with HTTP ${response.status}`;
  let requestId = response.headers.get("x-request-id") ?? undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; requestId?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
    if (body.error?.requestId) requestId = body.error.requestId;
  } catch {}
  return new CliError(code, message, requestId ? { requestId } : {});
}

/** Downloads the task's primary video to `dest`; returns the byte count. */
export async function downloadResult(
  task: Task,
  dest: string,
  ctx: { out: Output; baseUrl: string; signal?: AbortSignal | undefined },
): Promise<{ path: string; bytes: number }> {
  const primary = task.result?.primary_url;
  if (!primary) throw new CliError("no_result", `task ${task.id} has no result to download`, { taskId: task.id });
  const url = new URL(primary, `${ctx.baseUrl}/`);
  const expected = task.result?.media.find((m) => m.url === primary)?.size_bytes ?? task.result?.media[0]?.size_bytes;

  await mkdir(dirname(dest), { recursive: true });
  const tmp = `${dest}.${randomBytes(4).toString("hex")}.part`;
  const bar = byteProgress(ctx.out, "downloading");
  let received = 0;
  try {
    const response = await fetch(url, ctx.signal ? { signal: ctx.signal } : {});
    if (!response.ok || !response.body) throw await errorFromDownload(response);
    const length = Number(response.headers.get("content-length") ?? "");
    const total = Number.isFinite(length) && length > 0 ? length : expected;
    if (!ctx.out.tty) ctx.out.line(`downloading ${task.id}${total ? ` (${formatBytes(total)})` : ""}`);
    bar.start(total);
    await pipeline(
      Readable.fromWeb(response.body as import("node:stream/web").ReadableStream<Uint8Array>),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          received += chunk.length;
          bar.update(received);
          yield chunk;
        }
      },
      createWriteStream(tmp, { mode: 0o644 }),
      ctx.signal ? { signal: ctx.signal } : {},
    );
    bar.stop();
    if (length > 0 && received !== length) {
      throw new CliError("download_incomplete", `received ${received} of ${length} bytes`, { taskId: task.id });
    }
    await rename(tmp, dest);
    return { path: dest, bytes: received };
  } catch (error) {
    bar.stop();
    await rm(tmp, { force: true });
    throw error;
  }
}
