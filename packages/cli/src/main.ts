/** `framegate`: see program.ts for the commands. */
import { CommanderError } from "commander";
import { EnvFileError, loadEnvFile } from "./env-file.js";
import { EXIT_USAGE } from "./output.js";
import { buildProgram } from "./program.js";

// Before any command reads its settings: .env in the working directory, under the real environment.
try {
  loadEnvFile();
} catch (error) {
  if (!(error instanceof EnvFileError)) throw error;
  process.stderr.write(`error: env_file_invalid: ${error.message}\n`);
  process.exit(EXIT_USAGE);
}

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  // exitOverride: commander already printed its message (or the help).
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
}
