import {
  ApiError,
  type Config,
  ConfigError,
  loadConfig,
  NewerDatabaseError,
  openStore,
  type StoreHandle,
} from "@framegate/server";
import { CliError, EXIT_FAILURE, Output } from "./output.js";

export interface Printable {
  /** What --json prints. */
  json: unknown;
  /** What a person reads. */
  text: string;
}

/**
 * The store's errors in the CLI's one error shape, so the admin commands print
 * `error: <code>: <message>` (or the JSON envelope) exactly like the API commands do.
 */
function asCliError(error: unknown): unknown {
  if (error instanceof ApiError) return new CliError(error.code, error.message, { exitCode: EXIT_FAILURE });
  if (error instanceof ConfigError) return new CliError("config_invalid", error.message, { exitCode: EXIT_FAILURE });
  if (error instanceof NewerDatabaseError)
    return new CliError("database_too_new", error.message, { exitCode: EXIT_FAILURE });
  return error;
}

/** Opens the local store, runs one admin action, prints it, and exits non-zero on errors. */
export async function runCommand<O extends { json?: boolean }>(
  opts: O,
  action: (ctx: { store: StoreHandle; config: Config }, opts: O) => Promise<Printable>,
  open: { migrate?: boolean } = {},
): Promise<void> {
  const out = new Output(opts);
  let store: StoreHandle | undefined;
  try {
    const config = loadConfig();
    store = await openStore(config, open);
    const printable = await action({ store, config }, opts);
    out.result(printable.json, printable.text);
  } catch (error) {
    out.fail(asCliError(error));
  } finally {
    await store?.close();
  }
}
