import { bootstrapDevAccount, ConfigError, loadConfig, type ProcessRole, startServer } from "@framegate/server";

/**
 * `framegate serve` (API + job runners), `framegate api` (API only) and `framegate worker`
 * (job runners only). The API roles print a ready-made key and curl on the very first start.
 */
export async function serveCommand(role: ProcessRole = "all"): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    config = loadConfig();
    server = await startServer(config, { role });
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  }
  if (config.bootstrap.enabled && role !== "worker") {
    const created = await bootstrapDevAccount(server.store.db, server.accounts, config.bootstrap.credits);
    if (created) printWelcome(server.url, created.key, config.bootstrap.credits);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.log.info({ signal }, "shutting down");
    server.close().then(
      () => process.exit(0),
      (error) => {
        server.log.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

function printWelcome(url: string, key: string, credits: number) {
  const lines = [
    "",
    "  Framegate is running. A dev account with %CREDITS% credits was created, with this API key",
    "  (shown only this once; keep it):",
    "",
    `    export FRAMEGATE_API_KEY=${key}`,
    "",
    "  Try it:",
    "",
    `    curl -s ${url}/api/v1/generations \\`,
    '      -H "Authorization: Bearer $FRAMEGATE_API_KEY" -H "Content-Type: application/json" \\',
    `      -d '{"model":"kling-2-6","prompt":"A paper boat drifting down a rainy street"}'`,
    "",
    `    curl -s ${url}/api/v1/credits -H "Authorization: Bearer $FRAMEGATE_API_KEY"`,
    "",
  ];
  process.stdout.write(`${lines.join("\n").replace("%CREDITS%", String(credits))}\n`);
}
