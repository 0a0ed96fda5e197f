/** `framegate`: see program.ts for the commands. */
import { CommanderError } from "commander";
import { EXIT_USAGE } from "./output.js";
import { buildProgram } from "./program.js";

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  // exitOverride: commander already printed its message (or the help).
  if (!(error instanceof CommanderError)) throw error;
  process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
}
