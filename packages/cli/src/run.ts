import { ApiError, type Config, ConfigError, loadConfig, openStore, type StoreHandle } from "@framegate/server";

export interface Printable {
  /** What --json prints. */
  json: unknown;
  /** What a person reads. */
  text: string;
}

/** Opens the local store, runs one admin action, prints it, and exits non-zero on errors. */
export async function runCommand<O extends { json?: boolean }>(
  opts: O,
  action: (ctx: { store: StoreHandle; config: Config }, opts: O) => Promise<Printable>,
  open: { migrate?: boolean } = {},
): Promise<void> {
  let store: StoreHandle | undefined;
  try {
    const config = loadConfig();
    store = await openStore(config, open);
    const out = await action({ store, config }, opts);
    console.log(opts.json ? JSON.stringify(out.json, null, 2) : out.text);
  } catch (error) {
    const message =
      error instanceof ApiError || error instanceof ConfigError || error instanceof Error
        ? error.message
        : String(error);
    if (opts.json) {
      const code = error instanceof ApiError ? error.code : "error";
      console.error(JSON.stringify({ error: { code, message } }));
    } else {
      console.error(`error: ${message}`);
    }
    process.exitCode = 1;
  } finally {
    await store?.close();
  }
}
