/** `framegate`: run the server and manage accounts, keys and credits on the local store. */
import { Command, InvalidArgumentError } from "commander";
import * as admin from "./admin.js";
import { runCommand } from "./run.js";
import { serveCommand } from "./serve.js";

const program = new Command();
program.name("framegate").description("Self-hosted Rivya API v1 gateway for Kling 2.6").version("0.1.0");

program
  .command("serve")
  .description("start the API and the worker in one process (the default deployment)")
  .action(() => serveCommand());

program
  .command("migrate")
  .description("apply pending database migrations and exit")
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.migrate, { migrate: false }));

const int = (value: string) => {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("must be a whole number");
  return Number.parseInt(value, 10);
};

const accounts = program.command("accounts").description("manage accounts");
accounts
  .command("create")
  .description("create an account")
  .requiredOption("--name <name>", "account name")
  .option("--credits <n>", "initial credits", int, 0)
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.createAccount));
accounts
  .command("list")
  .description("list accounts with their balances")
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.listAccounts));

const keys = program.command("keys").description("manage API keys");
keys
  .command("create")
  .description("create an API key (the secret is shown once)")
  .requiredOption("--account <id>", "account id (acct_…)")
  .option("--name <name>", "a label for the key")
  .option("--scopes <list>", "comma-separated scopes (default: all)")
  .option("--expires-at <time>", "ISO-8601 expiry time")
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.createKey));
keys
  .command("list")
  .description("list an account's keys (prefixes only)")
  .requiredOption("--account <id>", "account id (acct_…)")
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.listKeys));
keys
  .command("revoke")
  .description("revoke a key")
  .argument("<keyId>", "key id (key_…)")
  .option("--json", "machine-readable output")
  .action((keyId, opts) => runCommand({ ...opts, keyId }, admin.revokeKey));

const credits = program.command("credits").description("manage credits");
credits
  .command("grant")
  .description("grant credits (a negative amount debits, never below 0)")
  .requiredOption("--account <id>", "account id (acct_…)")
  .requiredOption("--amount <n>", "credits to add (or remove when negative)", int)
  .option("--reason <text>", "why (kept in the ledger)")
  .option("--json", "machine-readable output")
  .action((opts) => runCommand(opts, admin.grantCredits));

await program.parseAsync(process.argv);
