/**
 * The operator commands (serve, api, worker, migrate, accounts, keys, credits grant) run on
 * @framegate/server, which the CLI declares as an optional peer dependency: a client-only install
 * (generate, status, wait, …) does not pull in sharp, better-sqlite3 and ffmpeg. Their modules are
 * loaded through here, so a missing server package is a one-line instruction, not a stack trace.
 */
import { CliError, EXIT_FAILURE, Output } from "./output.js";

export const SERVER_PACKAGE = "@framegate/server";

/** Node's error for an import of a package that is not installed, when that package is the server. */
export function isServerMissing(error: unknown): boolean {
  if (!(error instanceof Error) || (error as NodeJS.ErrnoException).code !== "ERR_MODULE_NOT_FOUND") return false;
  return error.message.includes(`'${SERVER_PACKAGE}'`);
}

export const serverMissingError = () =>
  new CliError(
    "server_not_installed",
    `this command runs a server or its store, which needs ${SERVER_PACKAGE}: npm i ${SERVER_PACKAGE}`,
    {
      exitCode: EXIT_FAILURE,
      hint: `install ${SERVER_PACKAGE} beside @framegate/cli, at the same version; the API commands work without it.`,
    },
  );

/**
 * Loads an operator command's modules. Without the server package it prints the error like every
 * other command (`--json` included) and exits 1: there is nothing the command could do instead.
 */
export async function loadServerSide<T>(load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (!isServerMissing(error)) throw error;
    new Output({ json: process.argv.includes("--json") }).fail(serverMissingError());
    process.exit(EXIT_FAILURE);
  }
}
