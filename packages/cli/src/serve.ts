import { bootstrapDevAccount, ConfigError, loadConfig, startServer } from "@framegate/server";

/** `framegate serve`: API + worker; prints a ready-made key and curl on the very first start. */
export async function serveCommand(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    console.error(error instanceof ConfigError ? error.message : error);
    process.exit(1);
  }
  const server = await startServer(config);
  if (config.bootstrap.enabled) {
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
