import { type Logger, pino } from "pino";
import { prettyFactory } from "pino-pretty";
import { traceLogFields } from "./observability/tracing.js";

export type LogFormat = "auto" | "pretty" | "json";

/** Paths of anything that could carry a secret; pino censors them before any output is formatted. */
const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "req.headers.authorization",
  "key",
  "*.key",
  "apiKey",
  "*.apiKey",
  "secret",
  "*.secret",
  "signingSecret",
  "adminToken",
  "token",
];

/** `auto`: pretty on a terminal (a person reads it), JSON otherwise (a collector parses it). */
export function resolveLogFormat(format: LogFormat, destination: NodeJS.WritableStream): "pretty" | "json" {
  if (format !== "auto") return format;
  return (destination as { isTTY?: boolean }).isTTY === true ? "pretty" : "json";
}

/**
 * Logs as JSON lines, or as pretty lines (pino-pretty) for a person at a terminal. Redaction is
 * pino's and happens before either format sees a line, so both print the same censored values.
 * Pretty lines are formatted and written in the logging call itself (pino-pretty's formatter,
 * not its stream), so they keep their order with the start-up banner and none is lost on exit.
 */
export function createLogger(
  level: string,
  destination: NodeJS.WritableStream = process.stdout,
  format: LogFormat = "json",
): Logger {
  const options = {
    level,
    base: { service: "framegate" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    // Inside a span (tracing on), each line carries trace_id and span_id; elsewhere nothing is added.
    mixin: traceLogFields,
  };
  if (resolveLogFormat(format, destination) === "json") return pino(options, destination);
  const pretty = prettyFactory({
    translateTime: "SYS:HH:MM:ss.l",
    ignore: "pid,hostname,service",
    // One line per entry (a stack still spans lines); colours on a terminal, unless NO_COLOR is set.
    singleLine: true,
    colorize: (destination as { isTTY?: boolean }).isTTY === true && !process.env.NO_COLOR,
  });
  return pino(options, { write: (line: string) => destination.write(pretty(line)) });
}
