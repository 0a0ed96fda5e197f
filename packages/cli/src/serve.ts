import {
  bootstrapDevAccount,
  ConfigError,
  existingDevAccount,
  ListenError,
  loadConfig,
  NewerDatabaseError,
  type ProcessRole,
  startServer,
} from "@framegate/server";

/**
 * `framegate serve` (API + job runners), `framegate api` (API only) and `framegate worker`
 * (job runners only). The API roles print a ready-made key and curl on the very first start, and
 * on later starts where the API and its reference are, and how to get a new dev key.
 */
export async function serveCommand(role: ProcessRole = "all"): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    config = loadConfig();
    server = await startServer(config, { role });
  } catch (error) {
    // A setting or an address the user can fix: the sentence alone, without a stack.
    const plain = error instanceof ConfigError || error instanceof ListenError || error instanceof NewerDatabaseError;
    console.error(plain ? error.message : error);
    process.exit(1);
  }
  if (role !== "worker") {
    const created = config.bootstrap.enabled
      ? await bootstrapDevAccount(server.store.db, server.accounts, config.bootstrap.credits)
      : undefined;
    if (created) printWelcome(server.url, created.key, config.bootstrap.credits);
    else printRunning(server.url, await existingDevAccount(server.store.db));
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
    `  Framegate is running at ${url} (API reference: ${url}/docs).`,
    "  A dev account with %CREDITS% credits was created, with this API key",
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

/** Later starts: where the API is, and, when a first start made the dev account, how to get a new key for it. */
function printRunning(url: string, devAccountId: string | undefined) {
  const lines = ["", `  Framegate is running at ${url} (API reference: ${url}/docs).`];
  if (devAccountId) {
    lines.push(
      `  The dev account (${devAccountId}) was created at the first start; its key was shown then only.`,
      "  Lost it? Make a new one (same DATA_DIR or DATABASE_URL; `npx framegate` from a checkout):",
      "",
      `    framegate keys create --account ${devAccountId} --name "dev key"`,
    );
  }
  process.stdout.write(`${lines.join("\n")}\n\n`);
}
