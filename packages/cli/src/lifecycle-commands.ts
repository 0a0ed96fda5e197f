/**
 * `framegate accounts export ID [--out FILE]` and `framegate accounts delete ID --yes`, on the
 * local store (accounts/lifecycle-offline.ts in the server package). The export is streamed, to
 * the file or to stdout, so a large account is never held in memory.
 */
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import type { Writable } from "node:stream";
import {
  ApiError,
  type Config,
  createLogger,
  loadConfig,
  offlineLifecycle,
  openStore,
  type StoreHandle,
} from "@framegate/server";
import { CliError, EXIT_FAILURE, formatBytes, Output } from "./output.js";
import type { Printable } from "./run.js";

type Ctx = { store: StoreHandle; config: Config };

async function writeAll(chunks: AsyncIterable<string>, sink: Writable): Promise<number> {
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += Buffer.byteLength(chunk);
    // Waits for the sink to drain: the export is read no faster than it is written.
    if (!sink.write(chunk)) await once(sink, "drain");
  }
  return bytes;
}

/**
 * Without --out: the document is the whole of stdout (a pipe gets pure JSON), so this does not
 * go through runCommand, which prints a result after the action.
 */
export async function exportToStdout(opts: { id: string; json?: boolean }): Promise<void> {
  let store: StoreHandle | undefined;
  try {
    const config = loadConfig();
    store = await openStore(config);
    const lifecycle = await offlineLifecycle(config, store, createLogger("warn"));
    await writeAll(lifecycle.export(opts.id), process.stdout);
    process.stdout.write("\n");
  } catch (error) {
    const cliError =
      error instanceof ApiError ? new CliError(error.code, error.message, { exitCode: EXIT_FAILURE }) : error;
    new Output(opts).fail(cliError);
  } finally {
    await store?.close();
  }
}

export async function exportAccount(ctx: Ctx, opts: { id: string; out: string }): Promise<Printable> {
  const lifecycle = await offlineLifecycle(ctx.config, ctx.store, createLogger("warn"));
  // "wx": an existing file is never overwritten; a failed export leaves no half-written one.
  const file = createWriteStream(opts.out, { flags: "wx" });
  try {
    await once(file, "open");
    const bytes = await writeAll(lifecycle.export(opts.id), file);
    file.end();
    await once(file, "finish");
    const summary = { account: opts.id, file: opts.out, bytes };
    return { json: summary, text: `exported ${opts.id} to ${opts.out} (${formatBytes(bytes)})` };
  } catch (error) {
    file.destroy();
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new ApiError("validation_failed", `${opts.out} exists already; choose another --out`);
    }
    await rm(opts.out, { force: true });
    throw error;
  }
}

export async function deleteAccount(ctx: Ctx, opts: { id: string; yes?: boolean }): Promise<Printable> {
  if (!opts.yes) {
    throw new ApiError(
      "validation_failed",
      `deleting ${opts.id} revokes its keys and removes its files and results for good; add --yes (export it first: framegate accounts export ${opts.id} --out FILE)`,
    );
  }
  const lifecycle = await offlineLifecycle(ctx.config, ctx.store, createLogger("warn"));
  const closed = await lifecycle.close(opts.id);
  const json = {
    id: opts.id,
    deleted: true,
    deleted_at: closed.deletedAt,
    keys_revoked: closed.keyIds.length,
    webhook_endpoints_revoked: closed.endpoints,
  };
  return {
    json,
    text: [
      `deleted ${opts.id} at ${closed.deletedAt}: ${closed.keyIds.length} key(s) and ${closed.endpoints} webhook endpoint(s) revoked`,
      "the server cancels its tasks and removes its files and results at its next housekeeping (within 10 minutes);",
      `DELETE /admin/v1/accounts/${opts.id} does it at once`,
    ].join("\n"),
  };
}
