/** `framegate files list|get|delete`: the account's uploaded files (upload is in api.ts). */
import type { FileKind, FileObject } from "@framegate/sdk";
import type { ApiContext } from "./api.js";
import { formatBytes, usageError } from "./output.js";
import { collect, formatTable, MAX_PAGE_SIZE, parseLimit } from "./pages.js";
import { FILE_KINDS } from "./params.js";

export interface FilesListOptions {
  kind?: string;
  limit?: string;
  startingAfter?: string;
}

const FILE_ID = /^[A-Za-z0-9_]{1,64}$/;

/** Local checks of `files list`: everything is refused before a request. */
export function checkFilesList(opts: FilesListOptions): { limit: number; kind: FileKind | undefined } {
  if (opts.kind !== undefined && !(FILE_KINDS as readonly string[]).includes(opts.kind)) {
    throw usageError(`--kind must be one of ${FILE_KINDS.join(", ")} (got "${opts.kind}")`);
  }
  if (opts.startingAfter !== undefined && !FILE_ID.test(opts.startingAfter)) {
    throw usageError(`--starting-after must be a file id (got "${opts.startingAfter}")`);
  }
  return { limit: parseLimit(opts.limit), kind: opts.kind as FileKind | undefined };
}

/** A file id argument: checked locally so a typo is not sent as a path. */
export function checkFileId(id: string): string {
  if (!FILE_ID.test(id)) throw usageError(`expected a file id such as file_… (got "${id}")`);
  return id;
}

function sizeCell(file: FileObject): string {
  const dims = file.width ? ` ${file.width}x${file.height}` : "";
  const duration = file.duration_seconds !== null ? ` ${file.duration_seconds} s` : "";
  return `${formatBytes(file.size_bytes)}${dims}${duration}`;
}

export async function filesList(ctx: ApiContext, opts: FilesListOptions): Promise<void> {
  const { limit, kind } = checkFilesList(opts);
  const list = await collect(
    ctx.client.files.list(
      {
        limit: Math.min(limit, MAX_PAGE_SIZE),
        ...(kind ? { kind } : {}),
        ...(opts.startingAfter ? { startingAfter: opts.startingAfter } : {}),
      },
      { signal: ctx.signal },
    ),
    limit,
  );
  if (list.data.length === 0) {
    ctx.out.result(list, kind ? `no ${kind} files` : "no files");
    return;
  }
  const rows = list.data.map((f) => [
    f.id,
    f.kind,
    f.mime_type,
    sizeCell(f),
    f.created_at,
    f.expires_at,
    f.name ?? "-",
  ]);
  const table = formatTable(["ID", "KIND", "TYPE", "SIZE", "CREATED", "EXPIRES", "NAME"], rows);
  const last = list.data[list.data.length - 1];
  const same = `${kind ? ` --kind ${kind}` : ""}${opts.limit ? ` --limit ${limit}` : ""}`;
  const more = list.has_more && last ? `\n… more: framegate files list${same} --starting-after ${last.id}` : "";
  ctx.out.result(list, `${table}${more}`);
}

export async function filesGet(ctx: ApiContext, id: string): Promise<void> {
  const file = await ctx.client.files.retrieve(checkFileId(id), { signal: ctx.signal });
  ctx.out.result(
    file,
    [
      `${file.id}  ${file.kind}  ${file.mime_type}  ${sizeCell(file)}`,
      ...(file.name ? [`  name:    ${file.name}`] : []),
      `  sha256:  ${file.sha256}`,
      `  created: ${file.created_at}`,
      `  expires: ${file.expires_at}`,
      `  url:     ${file.url}`,
      ...(file.duration_token ? [`  duration_token: ${file.duration_token}`] : []),
    ].join("\n"),
  );
}

export async function filesDelete(ctx: ApiContext, id: string): Promise<void> {
  const deletion = await ctx.client.files.delete(checkFileId(id), { signal: ctx.signal });
  const tasks = deletion.pending_tasks;
  const waiting = tasks.length === 1 ? "the task using it ends" : `the ${tasks.length} tasks using it end`;
  const text =
    deletion.storage === "removed"
      ? `deleted ${deletion.id}`
      : `deleted ${deletion.id}; its bytes are kept until ${waiting} (${tasks.join(", ")})`;
  ctx.out.result(deletion, text);
}
