/**
 * The `framegate` command tree: generate videos through the API (generate, status, wait, credits,
 * models, files, webhooks, login/logout), and run the server and manage accounts, keys and credits
 * on the local store (serve, migrate, accounts, keys, credits grant). The store-side modules load
 * @framegate/server, so they are imported only by the commands that need them.
 */
import { Command, InvalidArgumentError, Option } from "commander";
import * as api from "./api.js";
import {
  API_KEY_SCOPES,
  type ApiKeysCreateOptions,
  apiKeysCreate,
  apiKeysList,
  apiKeysRevoke,
  checkApiKeysCreate,
} from "./api-keys-commands.js";
import { cancelGeneration, checkTaskId } from "./cancel-command.js";
import { DEFAULT_BASE_URL } from "./client-config.js";
import {
  checkFileId,
  checkFilesList,
  type FilesListOptions,
  filesDelete,
  filesGet,
  filesList,
} from "./files-commands.js";
import { checkList, type ListOptions, listGenerations, TASK_STATUSES } from "./generations-list.js";
import { parseLimit } from "./pages.js";
import { DEFAULT_MODEL, defaultOf, FILE_KINDS, MODEL_IDS, optionsText, WEBHOOK_EVENT_TYPES } from "./params.js";
import { loadServerSide } from "./server-side.js";
import {
  checkLedger,
  checkUsage,
  LEDGER_TYPES,
  type LedgerOptions,
  ledger,
  type UsageOptions,
  usage,
} from "./usage-commands.js";
import { watchGeneration } from "./watch-command.js";
import {
  checkEvents,
  EVENT_FILTER_TYPES,
  type EventsOptions,
  webhooksEvents,
  webhooksRedeliver,
  webhooksRotate,
  webhooksSetStatus,
} from "./webhook-commands.js";

export function buildProgram(): Command {
  const program = new Command();
  // Exit code 2 for usage errors; a command's own options only before its subcommands, so that
  // `credits --json` and `credits grant --json` each get theirs.
  program.exitOverride().enablePositionalOptions();
  program
    .name("framegate")
    .description("Self-hosted Rivya API v1 gateway for Kling 2.6: generate videos, and run and manage the server")
    .version("0.1.0")
    .addHelpText(
      "after",
      `
Examples:
  $ framegate serve                                   # start the server (first start prints a key)
  $ framegate api & framegate worker                  # scale-out: API and job runners apart (PostgreSQL)
  $ framegate login --api-key rvya_sk_…               # check the key and save it
  $ framegate generate "A paper boat drifting down a rainy street" --duration 10 --sound
  $ framegate generate "The product turns on its stand" --image product.png --aspect 16:9 --out turn.mp4

Configuration of the API commands (first found wins):
  --base-url / --api-key flags
  FRAMEGATE_BASE_URL / FRAMEGATE_API_KEY environment variables
  the file written by \`framegate login\`: $FRAMEGATE_CONFIG, else $XDG_CONFIG_HOME/framegate/config.json,
  else ~/.config/framegate/config.json
  the default base URL ${DEFAULT_BASE_URL}

Exit codes: 0 success, 1 the API refused or the generation failed, 2 bad usage, 130 interrupted.
Every command takes --help, and the API commands take --json.`,
    );

  /** --base-url, --api-key and --json on an API command. */
  function apiCommand(cmd: Command): Command {
    return cmd
      .option("--json", "machine-readable output (errors as JSON on stderr)")
      .option("--base-url <url>", `server URL (env FRAMEGATE_BASE_URL; default ${DEFAULT_BASE_URL})`)
      .option("--api-key <key>", "API key rvya_sk_… (env FRAMEGATE_API_KEY, or `framegate login`)");
  }

  const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;

  // ---------------------------------------------------------------- API commands

  apiCommand(
    program
      .command("generate")
      .description("generate a video: upload the reference, create the task, follow it and download the MP4")
      .argument("<prompt>", "what the video shows")
      .option(
        "--duration <seconds>",
        `length in seconds: ${optionsText("duration")} (default ${defaultOf("duration")})`,
      )
      .option("--sound", "generate audio too")
      .option("--aspect <ratio>", `aspect ratio: ${optionsText("aspect_ratio")} (default ${defaultOf("aspect_ratio")})`)
      .option("--image <path>", "reference image (PNG, JPEG or WEBP) for image-to-video; it is uploaded first")
      .option("--out <path>", "where to save the MP4 (default <task id>.mp4; a directory saves <task id>.mp4 in it)")
      .option("--no-wait", "print the queued task and return without waiting")
      .option("--timeout <seconds>", "give up waiting after this long (the task keeps running)")
      .option("--idempotency-key <key>", "Idempotency-Key of the create request (default: a new one per run)")
      .addOption(new Option("--model <id>", "model id").choices(MODEL_IDS).default(DEFAULT_MODEL)),
  )
    .addHelpText(
      "after",
      `${examples([
        'framegate generate "A paper boat drifting down a rainy street"',
        'framegate generate "Waves at dusk" --duration 10 --sound --aspect 16:9 --out waves.mp4',
        'framegate generate "The product slowly turns" --image product.png --aspect 9:16',
        'framegate generate "A fox in the snow" --no-wait --json | jq -r .id',
      ])}
On a terminal the status and the download are redrawn in place; otherwise one line is printed per
status change. The result is saved under a temporary name and renamed when complete. With --json
the final task is printed with "file": <path>; a failed task exits 1 with its error code and reason.
Set FRAMEGATE_POLL_INTERVAL_MS to poll at a fixed interval (default: 2.5 s, then 5 s growing to 10 s).`,
    )
    .action((prompt: string, opts: api.GenerateOptions) =>
      api.runApi(opts, (ctx) => api.generate(ctx, prompt, opts), { check: () => api.checkGenerate(prompt, opts) }),
    );

  apiCommand(program.command("status").description("show a generation task").argument("<id>", "task id (task_…)"))
    .addHelpText("after", examples(["framegate status task_2x4…", "framegate status task_2x4… --json | jq .status"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.status(ctx, id)));

  apiCommand(
    program
      .command("cancel")
      .description("cancel a task that has not finished; its credits are refunded")
      .argument("<id>", "task id (task_…)"),
  )
    .addHelpText(
      "after",
      `${examples(["framegate cancel task_2x4…", "framegate cancel task_2x4… --json | jq .error.reason"])}
A queued task is cancelled at once. A processing one is cancelled at its upstream when that can
still stop it (the simulator; fal while the request waits in fal's queue); otherwise, and for a
finished task, the command fails with not_cancelable (exit 1) and the task is left as it is.`,
    )
    .action((id: string, opts: api.ApiOptions) =>
      api.runApi(opts, (ctx) => cancelGeneration(ctx, id), { check: () => checkTaskId(id) }),
    );

  apiCommand(
    program
      .command("wait")
      .description("wait for a task to finish, with live progress; --out downloads the video")
      .argument("<id>", "task id (task_…)")
      .option("--out <path>", "save the MP4 here (a directory saves <task id>.mp4 in it)")
      .option("--timeout <seconds>", "give up waiting after this long (the task keeps running)"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate wait task_2x4…",
        "framegate wait task_2x4… --out video.mp4",
        "framegate wait task_2x4… --out .",
      ]),
    )
    .action((id: string, opts: api.ApiOptions & { out?: string; timeout?: string }) =>
      api.runApi(opts, (ctx) => api.wait(ctx, id, opts), { check: () => api.parseTimeout(opts.timeout) }),
    );

  apiCommand(
    program
      .command("watch")
      .description("print each status change of a task as it happens (server-sent events)")
      .argument("<id>", "task id (task_…)"),
  )
    .addHelpText(
      "after",
      `${examples(["framegate watch task_2x4…", "framegate watch task_2x4… --json | jq -r .status"])}
One line per state (queued, processing, succeeded or failed), then the finished task. A dropped
connection is resumed where it left off. Exits 0 when the task succeeds and 1 when it fails (its
credits are refunded). With --json, each state is one JSON line (NDJSON).`,
    )
    .action((id: string, opts: api.ApiOptions) =>
      api.runApi(opts, (ctx) => watchGeneration(ctx, id), { check: () => checkTaskId(id) }),
    );

  apiCommand(
    program
      .command("list")
      .description("list generation tasks, newest first (walks pages up to --limit)")
      .option("--status <status>", `only tasks in this status: ${TASK_STATUSES.join(", ")}`)
      .option("--client-request-id <id>", "only the tasks created with this client_request_id")
      .option("--limit <n>", "at most this many (default 20; more than 100 fetches several pages)")
      .option("--starting-after <id>", "continue after this task id (from an earlier list)"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate list",
        "framegate list --status failed --limit 50",
        "framegate list --client-request-id order-1234 --json",
        "framegate list --json | jq -r '.data[] | select(.status == \"succeeded\") | .id'",
      ]),
    )
    .action((opts: api.ApiOptions & ListOptions) =>
      api.runApi(opts, (ctx) => listGenerations(ctx, opts), { check: () => checkList(opts) }),
    );

  // `credits` shows the balance through the API; `credits grant` changes it on the local store.
  const credits = apiCommand(
    program.command("credits").description("show the credit balance (via the API); `credits grant` adds credits"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate credits",
        "framegate credits --json",
        'framegate credits grant --account acct_… --amount 500 --reason "top-up"',
      ]),
    )
    .action((opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.credits(ctx)));

  apiCommand(
    program
      .command("ledger")
      .description("list credit movements, newest first, with the balance after each (walks pages up to --limit)")
      .option("--type <types>", `only these types, comma-separated: ${LEDGER_TYPES.join(", ")}`)
      .option("--since <time>", "only entries at or after this time: 2026-12-01, 2026-12-01T10:00:00Z, or 7d / 36h ago")
      .option("--until <time>", "only entries before this time (same forms)")
      .option("--limit <n>", "at most this many (default 20; more than 100 fetches several pages)")
      .option("--starting-after <id>", "continue after this entry id (from an earlier list)"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate ledger",
        "framegate ledger --type refund --since 7d",
        "framegate ledger --limit 500 --json | jq '[.data[].amount] | add'",
      ]),
    )
    .action((opts: api.ApiOptions & LedgerOptions) =>
      api.runApi(opts, (ctx) => ledger(ctx, opts), { check: () => checkLedger(opts) }),
    );

  apiCommand(
    program
      .command("usage")
      .description(
        "tasks (by the bucket they were created in) and credits (the ledger's entries) per UTC day or hour; default: the last 30 days",
      )
      .option("--granularity <g>", "day or hour (default day; hour defaults to the last 24 hours)")
      .option("--start <time>", "start of the range: 2026-12-01, 2026-12-01T10:00:00Z, or 7d / 36h ago")
      .option("--end <time>", "end of the range, exclusive (same forms); at most 31 days, or 168 hours"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate usage",
        "framegate usage --granularity hour --start 2d",
        "framegate usage --start 2026-11-01 --end 2026-12-01 --json",
      ]),
    )
    .action((opts: api.ApiOptions & UsageOptions) =>
      api.runApi(opts, (ctx) => usage(ctx, opts), { check: () => checkUsage(opts) }),
    );

  apiCommand(program.command("models").description("list the models the server offers, with their params"))
    .addHelpText("after", examples(["framegate models", "framegate models --json | jq '.data[].id'"]))
    .action((opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.models(ctx), { needsKey: false }));

  const files = program
    .command("files")
    .description("upload, list, show and delete reference media")
    .addHelpText(
      "after",
      examples([
        "framegate files upload product.png --model kling-2-6",
        "framegate files list",
        "framegate files delete file_…",
      ]),
    );
  apiCommand(
    files
      .command("upload")
      .description("upload a file to the Files API and print its id and URL")
      .argument("<path>", "the file")
      .option("--kind <kind>", `${FILE_KINDS.join(", ")} (default: from the file extension)`)
      .option("--model <id>", `apply this model's upload policy (${MODEL_IDS.join(", ")})`),
  )
    .addHelpText(
      "after",
      examples([
        "framegate files upload product.png --kind image --model kling-2-6",
        "framegate files upload product.png --json | jq -r .url",
      ]),
    )
    .action((path: string, opts: api.ApiOptions & { kind?: string; model?: string }) =>
      api.runApi(opts, (ctx) => api.filesUpload(ctx, path, opts), { check: () => api.checkUpload(path, opts) }),
    );
  apiCommand(
    files
      .command("list")
      .description("list the account's files, newest first (walks pages up to --limit)")
      .option("--kind <kind>", `only files of this kind: ${FILE_KINDS.join(", ")}`)
      .option("--limit <n>", "at most this many (default 20; more than 100 fetches several pages)")
      .option("--starting-after <id>", "continue after this file id (from an earlier list)"),
  )
    .addHelpText(
      "after",
      examples(["framegate files list", "framegate files list --kind image --json | jq -r '.data[].id'"]),
    )
    .action((opts: api.ApiOptions & FilesListOptions) =>
      api.runApi(opts, (ctx) => filesList(ctx, opts), { check: () => checkFilesList(opts) }),
    );
  apiCommand(files.command("get").description("show a file's metadata and URL").argument("<id>", "file id (file_…)"))
    .addHelpText("after", examples(["framegate files get file_…", "framegate files get file_… --json | jq -r .url"]))
    .action((id: string, opts: api.ApiOptions) =>
      api.runApi(opts, (ctx) => filesGet(ctx, id), { check: () => checkFileId(id) }),
    );
  apiCommand(
    files
      .command("delete")
      .description("delete a file (its bytes wait for the queued or processing tasks that use it)")
      .argument("<id>", "file id (file_…)"),
  )
    .addHelpText("after", examples(["framegate files delete file_…"]))
    .action((id: string, opts: api.ApiOptions) =>
      api.runApi(opts, (ctx) => filesDelete(ctx, id), { check: () => checkFileId(id) }),
    );

  const webhooks = program
    .command("webhooks")
    .description("manage webhook endpoints, their secrets, deliveries and events")
    .addHelpText(
      "after",
      examples([
        "framegate webhooks create --url https://example.com/hooks/rivya",
        "framegate webhooks list",
        "framegate webhooks test whend_…",
        "framegate webhooks deliveries whend_… --status failed",
      ]),
    );
  apiCommand(
    webhooks
      .command("create")
      .description("register an endpoint (its signing secret is shown once)")
      .requiredOption("--url <url>", "where events are POSTed (https)")
      .option("--name <name>", "a label")
      .option("--events <list>", `comma-separated: ${WEBHOOK_EVENT_TYPES.join(", ")} (default: all)`),
  )
    .addHelpText(
      "after",
      examples([
        "framegate webhooks create --url https://example.com/hooks/rivya",
        "framegate webhooks create --url https://example.com/hooks --name prod --events generation.failed",
      ]),
    )
    .action((opts: api.ApiOptions & { url: string; name?: string; events?: string }) =>
      api.runApi(opts, (ctx) => api.webhooksCreate(ctx, opts), { check: () => api.checkWebhook(opts) }),
    );
  apiCommand(webhooks.command("list").description("list the endpoints"))
    .addHelpText("after", examples(["framegate webhooks list", "framegate webhooks list --json"]))
    .action((opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.webhooksList(ctx)));
  apiCommand(
    webhooks
      .command("test")
      .description("send a webhook.test event to an endpoint")
      .argument("<id>", "endpoint id (whend_…)"),
  )
    .addHelpText("after", examples(["framegate webhooks test whend_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.webhooksTest(ctx, id)));
  apiCommand(
    webhooks
      .command("deliveries")
      .description("list an endpoint's delivery attempts, newest first")
      .argument("<id>", "endpoint id (whend_…)")
      .option("--status <status>", "only succeeded or failed attempts")
      .option("--limit <n>", "at most this many (default 20)"),
  )
    .addHelpText(
      "after",
      examples(["framegate webhooks deliveries whend_…", "framegate webhooks deliveries whend_… --status failed"]),
    )
    .action((id: string, opts: api.ApiOptions & { status?: string; limit?: string }) =>
      api.runApi(opts, (ctx) => api.webhooksDeliveries(ctx, id, opts), { check: () => api.checkDeliveries(opts) }),
    );
  apiCommand(
    webhooks
      .command("rotate")
      .description("rotate an endpoint's signing secret (the new one is shown once; the old one signs for 24 h more)")
      .argument("<id>", "endpoint id (whend_…)"),
  )
    .addHelpText("after", examples(["framegate webhooks rotate whend_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => webhooksRotate(ctx, id)));
  apiCommand(
    webhooks
      .command("enable")
      .description("re-enable an endpoint (also after an automatic disable; its failure count starts over)")
      .argument("<id>", "endpoint id (whend_…)"),
  )
    .addHelpText("after", examples(["framegate webhooks enable whend_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => webhooksSetStatus(ctx, id, "active")));
  apiCommand(
    webhooks
      .command("disable")
      .description("stop sending events to an endpoint, without deleting it")
      .argument("<id>", "endpoint id (whend_…)"),
  )
    .addHelpText("after", examples(["framegate webhooks disable whend_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => webhooksSetStatus(ctx, id, "disabled")));
  apiCommand(
    webhooks
      .command("events")
      .description("list the account's webhook events, newest first")
      .option("--type <type>", `only this type: ${EVENT_FILTER_TYPES.join(", ")}`)
      .option("--limit <n>", "at most this many (default 20)"),
  )
    .addHelpText(
      "after",
      examples(["framegate webhooks events", "framegate webhooks events --type generation.failed --json"]),
    )
    .action((opts: api.ApiOptions & EventsOptions) =>
      api.runApi(opts, (ctx) => webhooksEvents(ctx, opts), { check: () => checkEvents(opts) }),
    );
  apiCommand(
    webhooks
      .command("redeliver")
      .description("send an event again (to its endpoint, or to every endpoint subscribed to its type)")
      .argument("<event_id>", "event id (evt_…)"),
  )
    .addHelpText("after", examples(["framegate webhooks redeliver evt_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => webhooksRedeliver(ctx, id)));
  apiCommand(webhooks.command("delete").description("delete an endpoint").argument("<id>", "endpoint id (whend_…)"))
    .addHelpText("after", examples(["framegate webhooks delete whend_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => api.webhooksDelete(ctx, id)));

  const apiKeys = program
    .command("api-keys")
    .description("the signed-in account's API keys, through the API (scope keys:manage; the operator's are `keys`)")
    .addHelpText(
      "after",
      examples([
        "framegate api-keys list",
        "framegate api-keys create --name ci --scopes generations:create,generations:read",
        "framegate api-keys revoke key_…",
      ]),
    );
  apiCommand(
    apiKeys
      .command("list")
      .description("list the account's keys, newest first (never their secrets)")
      .option("--limit <n>", "at most this many (default 20)"),
  )
    .addHelpText("after", examples(["framegate api-keys list", "framegate api-keys list --json"]))
    .action((opts: api.ApiOptions & { limit?: string }) =>
      api.runApi(opts, (ctx) => apiKeysList(ctx, opts), { check: () => parseLimit(opts.limit) }),
    );
  apiCommand(
    apiKeys
      .command("create")
      .description("create a key (shown once); only scopes the calling key holds, expiring no later than it")
      .option("--name <name>", "a label")
      .option(
        "--scopes <list>",
        `comma-separated: ${API_KEY_SCOPES.join(", ")} (default: the caller's, without keys:manage)`,
      )
      .option("--expires-at <iso>", "ISO 8601 date-time (default: the caller's expiry, if any)"),
  )
    .addHelpText(
      "after",
      examples([
        "framegate api-keys create --name ci --scopes generations:create,generations:read",
        "framegate api-keys create --expires-at 2027-01-01T00:00:00Z --json | jq -r .key",
      ]),
    )
    .action((opts: api.ApiOptions & ApiKeysCreateOptions) =>
      api.runApi(opts, (ctx) => apiKeysCreate(ctx, opts), { check: () => checkApiKeysCreate(opts) }),
    );
  apiCommand(
    apiKeys
      .command("revoke")
      .description("revoke a key of the account: it stops working at once (the calling key may revoke itself)")
      .argument("<id>", "key id (key_…)"),
  )
    .addHelpText("after", examples(["framegate api-keys revoke key_…"]))
    .action((id: string, opts: api.ApiOptions) => api.runApi(opts, (ctx) => apiKeysRevoke(ctx, id)));

  program
    .command("login")
    .description("check an API key against the server and save it with the base URL (file mode 0600)")
    .option("--api-key <key>", "the key (default: FRAMEGATE_API_KEY, else asked for)")
    .option("--base-url <url>", `server URL (default: FRAMEGATE_BASE_URL, the saved one, else ${DEFAULT_BASE_URL})`)
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      `${examples([
        "framegate login --api-key rvya_sk_…",
        "framegate login --api-key rvya_sk_… --base-url https://framegate.example.com",
        "framegate login            # asks for the key without echoing it",
      ])}
The key is checked with GET /api/v1/credits, then saved to $FRAMEGATE_CONFIG, else
$XDG_CONFIG_HOME/framegate/config.json, else ~/.config/framegate/config.json. Only its prefix is shown.`,
    )
    .action((opts: api.ApiOptions) => api.login(opts));

  program
    .command("logout")
    .description("delete the saved configuration")
    .option("--json", "machine-readable output")
    .addHelpText("after", examples(["framegate logout"]))
    .action((opts: { json?: boolean }) => api.logout(opts));

  // ---------------------------------------------------------------- server and local store

  const loadAdmin = async () => {
    const [{ runCommand }, admin] = await loadServerSide(() => Promise.all([import("./run.js"), import("./admin.js")]));
    return { runCommand, admin };
  };

  program
    .command("serve")
    .description("start the API and the worker in one process (the default deployment)")
    .addHelpText("after", examples(["framegate serve", "PORT=9000 DATA_DIR=/var/lib/framegate framegate serve"]))
    .action(async () => (await loadServerSide(() => import("./serve.js"))).serveCommand());

  program
    .command("api")
    .description("start the HTTP API only (scale-out: run several, with `framegate worker` beside them)")
    .addHelpText(
      "after",
      examples([
        "framegate api",
        "HOST=0.0.0.0 DATABASE_URL=postgres://… STORAGE_DRIVER=s3 S3_BUCKET=media framegate api",
      ]),
    )
    .action(async () => (await loadServerSide(() => import("./serve.js"))).serveCommand("api"));

  program
    .command("worker")
    .description("run generation and webhook jobs only (scale-out; needs PUBLIC_BASE_URL)")
    .addHelpText(
      "after",
      examples([
        "framegate worker",
        "DATABASE_URL=postgres://… PUBLIC_BASE_URL=https://video.example.com HEALTH_PORT=9090 framegate worker",
      ]),
    )
    .action(async () => (await loadServerSide(() => import("./serve.js"))).serveCommand("worker"));

  program
    .command("migrate")
    .description("apply pending database migrations and exit")
    .option("--dry-run", "list the pending migrations without applying them")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples([
        "framegate migrate --dry-run",
        "framegate migrate",
        "DATA_DIR=/var/lib/framegate framegate migrate --json",
      ]),
    )
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.migrate, { migrate: false });
    });

  program
    .command("verify")
    .description(
      "check the store's invariants (balances, task credits, jobs, media) and report orphaned objects; read-only, exits 1 on any violation",
    )
    .option(
      "--grace-minutes <n>",
      "leave out jobs of tasks ended and objects written this recently (default 15)",
      (v) => {
        if (!/^\d+$/.test(v)) throw new InvalidArgumentError("must be a whole number of minutes");
        return Number.parseInt(v, 10);
      },
    )
    .option("--json", "the whole report as JSON")
    .addHelpText("after", examples(["framegate verify", "DATABASE_URL=postgres://… framegate verify --json"]))
    .action(async (opts) => {
      const [{ runCommand }, { verify }] = await loadServerSide(() =>
        Promise.all([import("./run.js"), import("./verify-command.js")]),
      );
      await runCommand(opts, verify);
    });

  program
    .command("stats")
    .description(
      "queue depth, recent tasks and refunds, provider error rates, disabled webhook endpoints (local store)",
    )
    .option("--json", "the raw document (as GET /admin/v1/stats, without circuit states)")
    .addHelpText("after", examples(["framegate stats", "DATABASE_URL=postgres://… framegate stats --json"]))
    .action(async (opts) => {
      const [{ runCommand }, { stats }] = await loadServerSide(() =>
        Promise.all([import("./run.js"), import("./stats-command.js")]),
      );
      await runCommand(opts, stats);
    });

  program
    .command("backup")
    .description("write a consistent archive of DATA_DIR (database, media, signing secret) while the server runs")
    .requiredOption("--out <file>", "the archive to write (a .tar; never overwritten)")
    .option("--without-secret", "leave the signing secret file out (keep it apart from the data yourself)")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples([
        "framegate backup --out /backups/framegate-$(date +%F).tar",
        "DATA_DIR=/var/lib/framegate framegate backup --out backup.tar --json",
      ]),
    )
    .action(async (opts: { out: string; withoutSecret?: boolean; json?: boolean }) =>
      (await loadServerSide(() => import("./backup-commands.js"))).backupCommand(opts),
    );

  program
    .command("restore")
    .description("restore a backup archive into DATA_DIR (checked whole before anything is written)")
    .argument("<file>", "an archive written by `framegate backup`")
    .option("--force", "restore into a non-empty DATA_DIR, moving its contents aside (never one a server has open)")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples(["framegate restore backup.tar", "DATA_DIR=/var/lib/framegate framegate restore backup.tar --force"]),
    )
    .action(async (file: string, opts: { force?: boolean; json?: boolean }) =>
      (await loadServerSide(() => import("./backup-commands.js"))).restoreCommand(file, opts),
    );

  const int = (value: string) => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("must be a whole number");
    return Number.parseInt(value, 10);
  };

  const accounts = program
    .command("accounts")
    .description("manage accounts (local store)")
    .addHelpText(
      "after",
      examples(['framegate accounts create --name "Acme Films" --credits 1000', "framegate accounts list"]),
    );
  accounts
    .command("create")
    .description("create an account")
    .requiredOption("--name <name>", "account name")
    .option("--credits <n>", "initial credits", int, 0)
    .option("--json", "machine-readable output")
    .addHelpText("after", examples(['framegate accounts create --name "Acme Films" --credits 1000']))
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.createAccount);
    });
  accounts
    .command("list")
    .description("list accounts with their balances")
    .option("--json", "machine-readable output")
    .addHelpText("after", examples(["framegate accounts list", "framegate accounts list --json"]))
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.listAccounts);
    });
  accounts
    .command("usage")
    .description("usage across accounts, per account, per provider, and refunds (the operators' report)")
    .option("--account <id>", "only this account")
    .option("--granularity <g>", "day or hour (default day; hour defaults to the last 24 hours)")
    .option("--start <time>", "start of the range: 2026-12-01, 2026-12-01T10:00:00Z, or 7d / 36h ago")
    .option("--end <time>", "end of the range, exclusive (same forms); at most 31 days, or 168 hours")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples(["framegate accounts usage", "framegate accounts usage --account acct_… --granularity hour"]),
    )
    .action(async (opts) => {
      const [{ runCommand }, { accountsUsage }] = await loadServerSide(() =>
        Promise.all([import("./run.js"), import("./admin-usage.js")]),
      );
      await runCommand(opts, accountsUsage);
    });

  accounts
    .command("export")
    .description("write everything an account holds as one JSON document (keys without secrets, no file bytes)")
    .argument("<id>", "account id (acct_…)")
    .option("--out <file>", "write it to this file (never overwritten) instead of stdout")
    .option("--json", "machine-readable output (errors, and the summary with --out)")
    .addHelpText(
      "after",
      examples(["framegate accounts export acct_… --out acct.json", "framegate accounts export acct_… | jq .ledger"]),
    )
    .action(async (id: string, opts: { out?: string; json?: boolean }) => {
      const [{ runCommand }, lifecycle] = await loadServerSide(() =>
        Promise.all([import("./run.js"), import("./lifecycle-commands.js")]),
      );
      const { out } = opts;
      if (out === undefined) await lifecycle.exportToStdout({ ...opts, id });
      else await runCommand({ ...opts, id, out }, lifecycle.exportAccount);
    });
  accounts
    .command("delete")
    .description("delete an account: keys revoked now; the server cancels its tasks and removes its files and results")
    .argument("<id>", "account id (acct_…)")
    .option("--yes", "confirm: this cannot be undone")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples(["framegate accounts export acct_… --out acct.json && framegate accounts delete acct_… --yes"]),
    )
    .action(async (id: string, opts: { yes?: boolean; json?: boolean }) => {
      const [{ runCommand }, lifecycle] = await loadServerSide(() =>
        Promise.all([import("./run.js"), import("./lifecycle-commands.js")]),
      );
      await runCommand({ ...opts, id }, lifecycle.deleteAccount);
    });

  const keys = program
    .command("keys")
    .description("manage API keys (local store)")
    .addHelpText(
      "after",
      examples([
        "framegate keys create --account acct_…",
        "framegate keys list --account acct_…",
        "framegate keys revoke key_…",
      ]),
    );
  keys
    .command("create")
    .description("create an API key (the secret is shown once)")
    .requiredOption("--account <id>", "account id (acct_…)")
    .option("--name <name>", "a label for the key")
    .option("--scopes <list>", "comma-separated scopes (default: all)")
    .option("--expires-at <time>", "ISO-8601 expiry time")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples([
        "framegate keys create --account acct_… --name ci",
        "framegate keys create --account acct_… --scopes credits:read,generations:read --expires-at 2027-01-01T00:00:00Z",
      ]),
    )
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.createKey);
    });
  keys
    .command("list")
    .description("list an account's keys (prefixes only)")
    .requiredOption("--account <id>", "account id (acct_…)")
    .option("--json", "machine-readable output")
    .addHelpText("after", examples(["framegate keys list --account acct_…"]))
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.listKeys);
    });
  keys
    .command("revoke")
    .description("revoke a key")
    .argument("<keyId>", "key id (key_…)")
    .option("--json", "machine-readable output")
    .addHelpText("after", examples(["framegate keys revoke key_…"]))
    .action(async (keyId, opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand({ ...opts, keyId }, admin.revokeKey);
    });

  credits
    .command("grant")
    .description("grant credits on the local store (a negative amount debits, never below 0)")
    .requiredOption("--account <id>", "account id (acct_…)")
    .requiredOption("--amount <n>", "credits to add (or remove when negative)", int)
    .option("--reason <text>", "why (kept in the ledger)")
    .option("--json", "machine-readable output")
    .addHelpText(
      "after",
      examples([
        "framegate credits grant --account acct_… --amount 500",
        'framegate credits grant --account acct_… --amount -100 --reason "refund to card"',
      ]),
    )
    .action(async (opts) => {
      const { runCommand, admin } = await loadAdmin();
      await runCommand(opts, admin.grantCredits);
    });

  return program;
}
