import { type Logger, pino } from "pino";

/** JSON logs; anything that could carry a secret is redacted by path. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: "framegate" },
      redact: {
        paths: [
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
        ],
        censor: "[redacted]",
      },
    },
    destination ?? process.stdout,
  );
}
